import org.apache.maven.artifact.versioning.ComparableVersion;
import java.nio.file.*;
import java.util.*;
public class MavenVectors {
  public static void main(String[] a) throws Exception {
    List<String> vs = Files.readAllLines(Paths.get(a[0]));
    System.out.println("# Maven version comparison vectors: a <TAB> op <TAB> b (op <, = or >)");
    System.out.println("# generated with org.apache.maven.artifact.versioning.ComparableVersion from maven-artifact 3.8.7 (Debian 12 package)");
    for (int i = 0; i < vs.size(); i++) for (int j = i + 1; j < vs.size(); j++) {
      int c = new ComparableVersion(vs.get(i)).compareTo(new ComparableVersion(vs.get(j)));
      System.out.println(vs.get(i) + "\t" + (c < 0 ? "<" : c == 0 ? "=" : ">") + "\t" + vs.get(j));
    }
  }
}
