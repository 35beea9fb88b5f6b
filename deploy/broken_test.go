package deploy_test

import (
	"maps"
	"strings"
	"testing"
)

// TestChecksCatchBrokenManifests proves each check can fail: it breaks one
// thing in a copy of the real manifests and expects the matching problem.
func TestChecksCatchBrokenManifests(t *testing.T) {
	good := readManifestFiles(t, ".")
	cases := []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "agent-daemonset.yaml",
			"      hostNetwork: true\n", "      hostNetwork: true\n      hostNetwrk: true\n", `json: unknown field "hostNetwrk"`},
		{"duplicate field", "explicit-deployment.yaml",
			"  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", "strict decode"},
		{"field of the wrong type", "explicit-deployment.yaml",
			"  replicas: 2\n", "  replicas: two\n", "strict decode"},
		{"unknown kind", "namespace.yaml",
			"kind: Namespace\nmetadata:\n  name: pgproxy\n", "kind: Namespaces\nmetadata:\n  name: pgproxy\n", `unknown kind "Namespaces"`},
		{"unknown ServiceMonitor field", "servicemonitor.yaml",
			"      interval: 30s\n---", "      interval: 30s\n      scrapeTimout: 10s\n---", `ServiceMonitor): strict decode: error unmarshaling JSON: while decoding JSON: json: unknown field "scrapeTimout"`},
		{"unknown ConfigMap variable", "agent-configmap.yaml",
			`  LOG_LEVEL: "info"`, `  LOG_LEVL: "info"`, "key LOG_LEVL is not a pgproxy variable"},
		{"unknown env variable", "explicit-deployment.yaml",
			"            - name: PG_BACKEND_URL\n", "            - name: PG_BACKEND_ULR\n", "env PG_BACKEND_ULR is not a pgproxy variable"},
		{"secret in a ConfigMap", "explicit-deployment.yaml",
			`  LOG_FORMAT: "json"`, `  LOG_FORMAT: "json"` + "\n  PG_BACKEND_URL: \"postgres://u:p@db/app\"", "holds PG_BACKEND_URL"},
		{"secret as a literal", "explicit-deployment.yaml",
			"              valueFrom:\n                secretKeyRef:\n                  name: pgproxy-backend\n                  key: PG_BACKEND_URL\n",
			"              value: postgres://u:p@db/app\n", "PG_BACKEND_URL comes from literal"},
		{"missing Secret key", "explicit-deployment.yaml",
			"                  key: PG_BACKEND_URL\n", "                  key: BACKEND_URL\n", "Secret pgproxy-backend has no key BACKEND_URL"},
		{"missing ConfigMap", "agent-daemonset.yaml",
			"                name: pgproxy-agent-config\n", "                name: pgproxy-agent-cfg\n", "envFrom ConfigMap pgproxy-agent-cfg not found"},
		{"undefined $(VAR)", "agent-daemonset.yaml",
			`"$(NODE_IP):15432"`, `"$(HOST_IP):15432"`, "refers to $(HOST_IP)"},
		{"invalid duration", "explicit-deployment.yaml",
			`  STARTUP_TIMEOUT: "15s"`, `  STARTUP_TIMEOUT: "ten seconds"`, "config.Load: STARTUP_TIMEOUT"},
		{"invalid intercept target", "agent-configmap.yaml",
			`"192.0.2.10:5432"`, `"192.0.2.10"`, "INTERCEPT_TARGETS"},
		{"agent without agent args", "agent-daemonset.yaml",
			`args: ["agent"]`, `args: ["proxy"]`, `args must start with "agent"`},
		{"capability missing", "agent-daemonset.yaml",
			"                - SYS_RESOURCE", "", "lacks capability SYS_RESOURCE"},
		{"agent privileged", "agent-daemonset.yaml",
			"            privileged: false\n", "            privileged: true\n", "agent container is privileged"},
		{"agent as non-root", "agent-daemonset.yaml",
			"            runAsUser: 0\n", "            runAsUser: 1000\n", "must run as uid 0"},
		{"allowPrivilegeEscalation false with SYS_ADMIN", "agent-daemonset.yaml",
			"            readOnlyRootFilesystem: true\n            # allow", "            readOnlyRootFilesystem: true\n            allowPrivilegeEscalation: false\n            # allow", "rejected by the API together with privileged or CAP_SYS_ADMIN"},
		{"bpffs not mounted", "agent-daemonset.yaml",
			"            path: /sys/fs/bpf\n", "            path: /sys/fs/bpffs\n", "no hostPath volume for /sys/fs/bpf"},
		{"cgroup not mounted", "agent-daemonset.yaml",
			"            path: /sys/fs/cgroup\n", "            path: /sys/fs/cgroups\n", "no hostPath volume for /sys/fs/cgroup"},
		{"intercept cgroup outside the host mount", "agent-configmap.yaml",
			`"/host/sys/fs/cgroup/kubepods.slice"`, `"/sys/fs/cgroup/kubepods.slice"`, "INTERCEPT_CGROUP"},
		{"pin path outside bpffs", "agent-configmap.yaml",
			`"/host/sys/fs/bpf/pgproxy"`, `"/run/pgproxy"`, "BPF_PIN_PATH"},
		{"bpffs without propagation", "agent-daemonset.yaml",
			"              mountPath: /host/sys/fs/bpf\n              mountPropagation: HostToContainer\n", "              mountPath: /host/sys/fs/bpf\n", "needs mountPropagation"},
		{"Bidirectional without privileged", "agent-daemonset.yaml",
			"              mountPath: /host/sys/fs/bpf\n              mountPropagation: HostToContainer\n", "              mountPath: /host/sys/fs/bpf\n              mountPropagation: Bidirectional\n", "Bidirectional propagation is only allowed"},
		{"agent without hostNetwork", "agent-daemonset.yaml",
			"      hostNetwork: true\n      dnsPolicy: ClusterFirstWithHostNet\n", "", "agent needs hostNetwork"},
		{"agent not on every node", "agent-daemonset.yaml",
			"        - operator: Exists\n", "        - key: node-role.kubernetes.io/control-plane\n          operator: Exists\n", "toleration {operator: Exists}"},
		{"readiness on the wrong path", "agent-daemonset.yaml",
			"              path: /ready\n", "              path: /healthz\n", `readinessProbe path "/healthz"`},
		{"liveness on the wrong port", "explicit-deployment.yaml",
			"            httpGet:\n              path: /health\n              port: http\n            periodSeconds: 10",
			"            httpGet:\n              path: /health\n              port: postgres\n            periodSeconds: 10", "livenessProbe port postgres is 5432, not the health port 8080"},
		{"health port moved without the probes", "agent-configmap.yaml",
			`HEALTH_CHECK_ADDR: ":15480"`, `HEALTH_CHECK_ADDR: ":15481"`, "not the health port 15481"},
		{"scrape annotation missing", "explicit-deployment.yaml",
			`        prometheus.io/scrape: "true"` + "\n", "", "prometheus.io/scrape"},
		{"scrape port wrong", "agent-daemonset.yaml",
			`prometheus.io/port: "15480"`, `prometheus.io/port: "8080"`, `prometheus.io/port "8080"`},
		{"explicit as root", "explicit-deployment.yaml",
			"            runAsNonRoot: true\n            runAsUser: 65532\n", "            runAsNonRoot: false\n            runAsUser: 0\n", "non-zero uid"},
		{"explicit root only at pod level", "explicit-deployment.yaml",
			"        runAsNonRoot: true\n        runAsUser: 65532\n", "        runAsNonRoot: false\n        runAsUser: 0\n", ""}, // the container's settings win
		{"explicit writable root", "explicit-deployment.yaml",
			"            readOnlyRootFilesystem: true\n", "            readOnlyRootFilesystem: false\n", "readOnlyRootFilesystem: true"},
		{"explicit keeps capabilities", "explicit-deployment.yaml",
			"            capabilities:\n              drop: [\"ALL\"]\n            seccomp", "            capabilities:\n              drop: [\"NET_RAW\"]\n            seccomp", "drop ALL capabilities"},
		{"explicit without seccomp", "explicit-deployment.yaml",
			"            seccompProfile:\n              type: RuntimeDefault\n---", "---", ""}, // the pod-level profile still applies
		{"explicit without any seccomp", "explicit-deployment.yaml",
			"        seccompProfile:\n          type: RuntimeDefault\n      topology", "      topology", ""}, // the container-level profile still applies
		{"Service selects nothing", "explicit-deployment.yaml",
			"  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: pgproxy\n    app.kubernetes.io/component: proxy\n",
			"  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: pgproxy\n    app.kubernetes.io/component: proxi\n", "matches 0 workloads"},
		{"Service targets a missing port", "explicit-deployment.yaml",
			"      targetPort: postgres\n", "      targetPort: pg\n", "port postgres targets pg"},
		{"PDB blocks every drain", "explicit-deployment.yaml",
			"  minAvailable: 1\n", "  minAvailable: 2\n", "minAvailable 2 >= replicas 2"},
		{"grace shorter than drain", "explicit-deployment.yaml",
			"      terminationGracePeriodSeconds: 45\n", "      terminationGracePeriodSeconds: 30\n", "must exceed preStop 5s + SHUTDOWN_DRAIN_TIMEOUT 30s"},
		{"drain longer than grace", "agent-configmap.yaml",
			`SHUTDOWN_DRAIN_TIMEOUT: "30s"`, `SHUTDOWN_DRAIN_TIMEOUT: "60s"`, "SHUTDOWN_DRAIN_TIMEOUT 1m0s"},
		{"different images", "agent-daemonset.yaml",
			"image: ghcr.io/pgproxy/pgproxy:0.1.0", "image: ghcr.io/pgproxy/pgproxy-agent:0.1.0", "different images"},
		{"kustomize image name", "kustomization.yaml",
			"  - name: ghcr.io/pgproxy/pgproxy\n", "  - name: pgproxy\n", `images entry "pgproxy"`},
		{"kustomization lists a missing file", "kustomization.yaml",
			"  - agent-secret.yaml\n", "  - agent-secrets.yaml\n", "resource agent-secrets.yaml does not exist"},
		{"manifest not listed", "kustomization.yaml",
			"  - namespace.yaml\n", "", "namespace.yaml is not listed"},
		{"undeclared namespace", "agent-configmap.yaml",
			"  namespace: pgproxy-system\n", "  namespace: pgproxy-agent\n", `namespace "pgproxy-agent", which no Namespace object declares`},
		{"explicit mode in a privileged namespace", "namespace.yaml",
			"    pod-security.kubernetes.io/enforce: restricted\n", "    pod-security.kubernetes.io/enforce: privileged\n", "held to restricted"},
		{"missing ServiceAccount", "agent-daemonset.yaml",
			"      serviceAccountName: pgproxy-agent\n", "      serviceAccountName: pgproxy-agnt\n", "no such ServiceAccount"},
		{"selector does not match template", "explicit-deployment.yaml",
			"  selector:\n    matchLabels:\n      app.kubernetes.io/name: pgproxy\n      app.kubernetes.io/component: proxy\n  strategy",
			"  selector:\n    matchLabels:\n      app.kubernetes.io/name: pgproxy\n      app.kubernetes.io/component: proxi\n  strategy", "spec.selector does not match"},
		{"ServiceMonitor port name", "servicemonitor.yaml",
			"  endpoints:\n    - port: http\n", "  endpoints:\n    - port: metrics\n", `endpoint port "metrics" is not a port name of Service pgproxy`},
		{"PodMonitor selects nothing", "servicemonitor.yaml",
			"      app.kubernetes.io/component: agent\n  namespaceSelector", "      app.kubernetes.io/component: agents\n  namespaceSelector", "PodMonitor/pgproxy-agent: selects no workload"},
		{"agent variable in explicit mode", "explicit-deployment.yaml",
			`  LOG_FORMAT: "json"`, `  LOG_FORMAT: "json"` + "\n  INTERCEPT_MODE: connect", "INTERCEPT_MODE is an agent variable"},
		{"memory limit missing", "explicit-deployment.yaml",
			"            limits:\n              memory: 512Mi\n", "", "no resources.limits.memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := maps.Clone(good)
			text := string(files[tc.file])
			if strings.Count(text, tc.old) != 1 {
				t.Fatalf("%s: the text to break occurs %d times, want once: %q", tc.file, strings.Count(text, tc.old), tc.old)
			}
			files[tc.file] = []byte(strings.Replace(text, tc.old, tc.new, 1))
			_, problems := checkManifests(files)
			if tc.want == "" {
				// Documented non-failures: a setting given at the other level.
				for _, p := range problems {
					t.Errorf("unexpected problem: %s", p)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					t.Logf("caught: %s", p)
					return
				}
			}
			t.Errorf("no problem containing %q; got %d:\n%s", tc.want, len(problems), strings.Join(problems, "\n"))
		})
	}
}

// TestChecksRejectBadManifestString feeds a manifest written from scratch
// with several mistakes and expects each of them to be reported.
func TestChecksRejectBadManifestString(t *testing.T) {
	const bad = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pgproxy
spec:
  replicas: 1
  selector:
    matchLabels: {app: pgproxy}
  template:
    metadata:
      labels: {app: pgproxy}
    spec:
      containers:
        - name: pgproxy
          image: pgproxy:latest
          env:
            - name: PG_BACKEND_URL
              value: postgres://app:hunter2@db:5432/app
            - name: LISTEN_PORT
              value: "5432"
          securityContext:
            runAsUser: 0
          readinessProbe:
            httpGet: {path: /, port: 5432}
---
apiVersion: v1
kind: Servce
metadata: {name: pgproxy}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: pgproxy, namespace: default}
data:
  LISTEN_ADDRESS: ":5432"
`
	_, problems := checkManifests(map[string][]byte{"bad.yaml": []byte(bad)})
	for _, want := range []string{
		`unknown kind "Servce"`,
		"no DaemonSet for transparent mode",
		"Deployment pgproxy has no metadata.namespace",
		`namespace "default", which no Namespace object declares`,
		"key LISTEN_ADDRESS is not a pgproxy variable",
		"env LISTEN_PORT is not a pgproxy variable",
		"PG_BACKEND_URL comes from literal",
		`readinessProbe path "/"`,
		"no livenessProbe",
		"runAsNonRoot: true",
		"readOnlyRootFilesystem: true",
		"drop ALL capabilities",
		"seccompProfile RuntimeDefault",
		"prometheus.io/scrape",
		"no serviceAccountName",
		"no PodDisruptionBudget",
		"no Service exposes",
		"want one kustomization.yaml",
	} {
		if !containsProblem(problems, want) {
			t.Errorf("missing problem %q", want)
		}
	}
	t.Logf("%d problems reported for the bad manifest", len(problems))

	// Unknown fields in an otherwise valid object fail the strict decode.
	_, problems = checkManifests(map[string][]byte{"typo.yaml": []byte(
		"apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: y}\nspec:\n  ports: [{port: 5432, targetPot: 5432}]\n")})
	if !containsProblem(problems, `json: unknown field "targetPot"`) {
		t.Errorf("strict decode accepted an unknown field:\n%s", strings.Join(problems, "\n"))
	}
}

func containsProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}
