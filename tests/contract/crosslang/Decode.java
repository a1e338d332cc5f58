// Decodes protobuf values with the classes of sdk/java (emeuse-schemas-<version>.jar), as a
// partner's Java consumer does, and prints each in text format on one line, for
// tests/contract/test_schema_packages.py. Run as a single-file program:
//   java -cp target/emeuse-schemas-<version>.jar:<protobuf-java> Decode.java CLASS=FILE ...
// CLASS is the generated class's binary name, e.g. emeuse.chronic.v1.ChronicEvents$ReadingRecorded.
import com.google.protobuf.Message;
import com.google.protobuf.TextFormat;
import java.nio.file.Files;
import java.nio.file.Path;

public class Decode {
  public static void main(String[] args) throws Exception {
    for (String arg : args) {
      int eq = arg.indexOf('=');
      Class<?> type = Class.forName(arg.substring(0, eq));
      byte[] value = Files.readAllBytes(Path.of(arg.substring(eq + 1)));
      Message message = (Message) type.getMethod("parseFrom", byte[].class).invoke(null, value);
      String text = TextFormat.printer().emittingSingleLine(true).printToString(message);
      System.out.println(message.getDescriptorForType().getFullName() + "\t" + text);
    }
  }
}
