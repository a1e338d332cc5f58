module github.com/emeuse-sante/emeuse-platform/sdk/go

go 1.23

require google.golang.org/protobuf v1.36.12
