// Command decode decodes protobuf values with the Go module sdk/go, as a partner's Go
// consumer does (the type from the record's ce_type header), and prints each as JSON on one
// line, for tests/contract/test_schema_packages.py:
//
//	go run . emeuse.chronic.v1.ReadingRecorded=FILE ...
package main

import (
	"fmt"
	"os"
	"strings"

	// Imported for their types' registration: the decoder finds a type by its full name.
	_ "github.com/emeuse-sante/emeuse-platform/sdk/go/emeuse/chronic/v1"
	_ "github.com/emeuse-sante/emeuse-platform/sdk/go/emeuse/event/v1"
	_ "github.com/emeuse-sante/emeuse-platform/sdk/go/emeuse/prevention/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

func main() {
	for _, arg := range os.Args[1:] {
		name, file, _ := strings.Cut(arg, "=")
		if err := decode(protoreflect.FullName(name), file); err != nil {
			fmt.Fprintln(os.Stderr, name+":", err)
			os.Exit(1)
		}
	}
}

func decode(name protoreflect.FullName, file string) error {
	messageType, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		return err
	}
	value, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	message := messageType.New().Interface()
	if err := proto.Unmarshal(value, message); err != nil {
		return err
	}
	text, err := protojson.Marshal(message)
	if err != nil {
		return err
	}
	fmt.Printf("%s\t%s\n", name, text)
	return nil
}
