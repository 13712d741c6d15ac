/*
 * StrimziTopicCheck: checks deploy/k8s/strimzi/ (the KafkaTopic for chat.messages) against
 * Strimzi's own typed model and Kafka's own topic-config rules, and against the rest of the
 * project: the init Job's topic (10-init-job.yaml, 02-configmap.yaml) and docs/deploy.md's table
 * of topic settings must say the same.
 *
 *   java -cp <classpath of pom.xml> StrimziTopicCheck.java <repo root>
 *
 * Prints one "PASS/FAIL <what>" line per check; exits 1 when a check failed, 2 when it could not
 * run. Strict: every YAML field must map to a property of Strimzi's KafkaTopic model (the
 * model's catch-all "additionalProperties" is switched off, so an unknown or misspelled field
 * fails instead of being kept silently), and every topic config name and value must be one the
 * Kafka broker accepts (LogConfig.validate, as the broker does for CreateTopics).
 */
import com.fasterxml.jackson.databind.BeanDescription;
import com.fasterxml.jackson.databind.DeserializationConfig;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.deser.BeanDeserializerBuilder;
import com.fasterxml.jackson.databind.deser.BeanDeserializerModifier;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.strimzi.api.kafka.model.topic.KafkaTopic;
import io.strimzi.api.kafka.model.topic.KafkaTopicSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.storage.internals.log.LogConfig;

public class StrimziTopicCheck {
    /* The rows of docs/deploy.md's topic table ("| `partitions` | `12` | ..."), by setting. */
    static final List<String> DOC_KEYS =
            List.of("partitions", "replicas", "min.insync.replicas", "retention.ms");

    int failed = 0;

    void check(boolean ok, String what) {
        System.out.println((ok ? "PASS " : "FAIL ") + what);
        if (!ok)
            failed++;
    }

    /* A YAML mapper that refuses what the typed model does not know: Strimzi's and fabric8's
     * classes keep unknown fields in a @JsonAnySetter map, which FAIL_ON_UNKNOWN_PROPERTIES
     * alone does not catch, so the any-setter is removed from every bean deserializer. */
    static ObjectMapper strictMapper() {
        SimpleModule strict = new SimpleModule("strict");
        strict.setDeserializerModifier(new BeanDeserializerModifier() {
            @Override
            public BeanDeserializerBuilder updateBuilder(DeserializationConfig config,
                                                         BeanDescription desc,
                                                         BeanDeserializerBuilder builder) {
                builder.setAnySetter(null);
                builder.setIgnoreUnknownProperties(false);
                return builder;
            }
        });
        return new ObjectMapper(new YAMLFactory())
                .registerModule(strict)
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
                .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);
    }

    static List<JsonNode> docs(Path p) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        YAMLMapper m = new YAMLMapper();
        try (var it = m.readerFor(JsonNode.class).readValues(p.toFile())) {
            while (it.hasNext()) {
                JsonNode n = (JsonNode) it.next();
                if (n != null && !n.isNull() && !n.isMissingNode())
                    out.add(n);
            }
        }
        return out;
    }

    static JsonNode find(List<JsonNode> docs, String kind, String name) {
        for (JsonNode d : docs)
            if (kind.equals(d.path("kind").asText()) &&
                    name.equals(d.path("metadata").path("name").asText()))
                return d;
        return null;
    }

    /* The value after an option in a command line ("--partitions 12" or "--partitions=12"). */
    static String option(JsonNode cmd, String opt) {
        for (int i = 0; i < cmd.size(); i++) {
            String a = cmd.get(i).asText();
            if (a.equals(opt) && i + 1 < cmd.size())
                return cmd.get(i + 1).asText();
            if (a.startsWith(opt + "="))
                return a.substring(opt.length() + 1);
        }
        return null;
    }

    int run(Path repo) throws IOException {
        Path dir = repo.resolve("deploy/k8s/strimzi");
        ObjectMapper strict = strictMapper();

        // The folder's kustomization lists exactly its manifests.
        JsonNode kust = docs(dir.resolve("kustomization.yaml")).get(0);
        TreeSet<String> listed = new TreeSet<>();
        kust.path("resources").forEach(r -> listed.add(r.asText()));
        TreeSet<String> present = new TreeSet<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.map(p -> p.getFileName().toString())
                    .filter(f -> f.endsWith(".yaml") && !f.equals("kustomization.yaml"))
                    .forEach(present::add);
        }
        check(listed.equals(present),
              "deploy/k8s/strimzi/kustomization.yaml lists exactly " + present + " (lists " +
                      listed + ")");

        // Each KafkaTopic there, strictly into Strimzi's model.
        // The model fills in apiVersion and kind from its own annotations, so those two are
        // read from the YAML as written.
        Map<String, KafkaTopic> topics = new LinkedHashMap<>();
        String want = KafkaTopic.RESOURCE_GROUP + "/" + KafkaTopic.V1BETA2;
        for (String f : present) {
            Path p = dir.resolve(f);
            String where = "deploy/k8s/strimzi/" + f;
            for (JsonNode d : docs(p))
                check(want.equals(d.path("apiVersion").asText()) &&
                              KafkaTopic.RESOURCE_KIND.equals(d.path("kind").asText()),
                      where + ": " + d.path("kind").asText() + " " +
                              d.path("metadata").path("name").asText() + " is a " + want + " " +
                              KafkaTopic.RESOURCE_KIND);
            try (var it = strict.readerFor(KafkaTopic.class).readValues(p.toFile())) {
                int i = 0;
                while (it.hasNext())
                    topics.put(f + "#" + i++, (KafkaTopic) it.next());
                check(true, where + " fits Strimzi " + KafkaTopic.V1BETA2 + " " +
                                    KafkaTopic.RESOURCE_KIND + " (" + KafkaTopic.class.getName() +
                                    ", unknown fields refused)");
            } catch (IOException | RuntimeException e) {
                check(false, where + " does not fit Strimzi " + KafkaTopic.V1BETA2 + " " +
                                     KafkaTopic.RESOURCE_KIND + ": " +
                                     String.valueOf(e.getMessage()).replace('\n', ' '));
            }
        }
        if (failed > 0)
            return 1;

        // The settings the init Job creates the topic with.
        List<JsonNode> cm = docs(repo.resolve("deploy/k8s/02-configmap.yaml"));
        JsonNode cfg = find(cm, "ConfigMap", "chat-config");
        List<JsonNode> jobDocs = docs(repo.resolve("deploy/k8s/10-init-job.yaml"));
        JsonNode job = find(jobDocs, "Job", "chat-admin-init");
        if (cfg == null || job == null) {
            check(false, "deploy/k8s has ConfigMap chat-config and Job chat-admin-init");
            return 1;
        }
        String topicName = cfg.path("data").path("CHAT_KAFKA_TOPIC").asText("chat.messages");
        JsonNode container = job.path("spec").path("template").path("spec").path("containers")
                                     .path(0);
        JsonNode cmd = container.path("command");
        String jobPartitions = option(cmd, "--partitions");
        String jobReplication = option(cmd, "--replication");
        if (jobReplication == null)
            jobReplication = cfg.path("data").path("CHAT_REPLICATION").asText(null);
        if (jobPartitions == null)
            jobPartitions = cfg.path("data").path("CHAT_PARTITIONS").asText(null);

        // docs/deploy.md's table.
        Map<String, String> doc = new LinkedHashMap<>();
        Pattern row = Pattern.compile("^\\| `([a-z.]+)` \\| `([^`]+)` \\|");
        for (String line : Files.readAllLines(repo.resolve("docs/deploy.md"))) {
            Matcher m = row.matcher(line);
            if (m.find() && DOC_KEYS.contains(m.group(1)))
                doc.putIfAbsent(m.group(1), m.group(2));
        }
        check(doc.keySet().containsAll(DOC_KEYS),
              "docs/deploy.md has the topic table rows " + DOC_KEYS + " (found " + doc.keySet() +
                      ")");

        int n = 0;
        for (var e : topics.entrySet()) {
            KafkaTopic t = e.getValue();
            KafkaTopicSpec spec = t.getSpec();
            String where = "deploy/k8s/strimzi/" + e.getKey().replaceAll("#0$", "") + ": ";
            if (spec == null) {
                check(false, where + "has a spec");
                continue;
            }
            String name = spec.getTopicName() != null ? spec.getTopicName()
                                                      : t.getMetadata().getName();
            if (!topicName.equals(name))
                continue;
            n++;
            Map<String, String> labels = t.getMetadata().getLabels();
            check(labels != null && labels.get("strimzi.io/cluster") != null &&
                          !labels.get("strimzi.io/cluster").isEmpty(),
                  where + "has the strimzi.io/cluster label the Topic Operator selects on");
            check(t.getMetadata().getNamespace() != null ||
                          kust.path("namespace").isTextual(),
                  where + "names the Kafka cluster's namespace (metadata or kustomization)");

            Integer partitions = spec.getPartitions(), replicas = spec.getReplicas();
            Map<String, Object> config = spec.getConfig() == null ? Map.of() : spec.getConfig();
            String minIsr = Objects.toString(config.get("min.insync.replicas"), null);
            String retention = Objects.toString(config.get("retention.ms"), null);

            check(partitions != null && String.valueOf(partitions).equals(jobPartitions),
                  where + "partitions " + partitions + " = the init Job's --partitions " +
                          jobPartitions);
            check(replicas != null && String.valueOf(replicas).equals(jobReplication),
                  where + "replicas " + replicas + " = the init Job's replication (" +
                          "CHAT_REPLICATION) " + jobReplication);
            int isr = -1;
            try {
                isr = Integer.parseInt(String.valueOf(minIsr));
            } catch (NumberFormatException ignored) {
            }
            check(replicas != null && isr >= 1 && isr < replicas,
                  where + "1 <= min.insync.replicas " + minIsr + " < replicas " + replicas +
                          " (acks=all producers keep working with one broker down)");

            // Kafka's own topic-config validation: names and values as the broker checks them.
            Properties props = new Properties();
            config.forEach((k, v) -> props.setProperty(k, String.valueOf(v)));
            String err = null;
            try {
                LogConfig.validate(props);
            } catch (RuntimeException ex) {
                err = ex.getClass().getSimpleName() + ": " + ex.getMessage();
            }
            check(err == null, where + "config " + new TreeSet<>(config.keySet()) +
                                       " is valid for a Kafka broker (LogConfig.validate)" +
                                       (err == null ? "" : ": " + err));

            Map<String, String> actual = new LinkedHashMap<>();
            actual.put("partitions", String.valueOf(partitions));
            actual.put("replicas", String.valueOf(replicas));
            actual.put("min.insync.replicas", String.valueOf(minIsr));
            actual.put("retention.ms", String.valueOf(retention));
            for (String k : DOC_KEYS)
                check(doc.containsKey(k) && doc.get(k).equals(actual.get(k)),
                      where + k + " " + actual.get(k) + " = docs/deploy.md's " + doc.get(k));
        }
        check(n == 1, "deploy/k8s/strimzi declares topic " + topicName + " (CHAT_KAFKA_TOPIC) " +
                              "exactly once (found " + n + ")");
        return failed > 0 ? 1 : 0;
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: StrimziTopicCheck <repo root>");
            System.exit(2);
        }
        try {
            System.exit(new StrimziTopicCheck().run(Path.of(args[0])));
        } catch (IOException | RuntimeException e) {
            System.out.println("FAIL could not run: " + e);
            System.exit(2);
        }
    }
}
