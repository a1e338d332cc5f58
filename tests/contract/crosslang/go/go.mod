// The cross-language test's Go decoder: it depends on the schema module as a partner does
// before a release is tagged, through a replace to this checkout.
module github.com/emeuse-sante/emeuse-platform/tests/contract/crosslang/go

go 1.23

require (
	github.com/emeuse-sante/emeuse-platform/sdk/go v1.2.0
	google.golang.org/protobuf v1.36.12
)

replace github.com/emeuse-sante/emeuse-platform/sdk/go => ../../../../sdk/go
