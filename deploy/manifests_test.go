// Package deploy_test checks the Kubernetes manifests in deploy/ without a
// cluster: every YAML document is decoded strictly (unknown or duplicate
// fields fail) into the Kubernetes API type its apiVersion/kind names, and the
// decoded objects are checked against pgproxy's configuration
// (config.Known, config.Load, agent.ParseTargets) and against each other
// (selectors, ports, probes, images, namespaces, privileges).
package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/userspace/config"
)

// TestManifests decodes and checks every deploy/*.yaml file.
func TestManifests(t *testing.T) {
	files := readManifestFiles(t, ".")
	objs, problems := checkManifests(files)
	for _, p := range problems {
		t.Error(p)
	}
	counts := map[string]int{}
	for _, o := range objs {
		counts[o.kind]++
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("%d files, %d objects decoded strictly: %s", len(files), len(objs), strings.Join(kinds, ", "))
}

func readManifestFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("no *.yaml files in %s", dir)
	}
	files := map[string][]byte{}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = data
	}
	return files
}

// ---------------------------------------------------------------------------
// Decoding

// object is one decoded YAML document.
type object struct {
	src  string // file#document
	kind string // apiVersion/kind, e.g. apps/v1/Deployment
	obj  any    // pointer to the typed object
}

// kindInfo is how one apiVersion/kind is decoded.
type kindInfo struct {
	newObj     func() any
	namespaced bool
}

// kinds lists every apiVersion/kind the manifests may contain; anything else
// fails. The Prometheus-operator and kustomize kinds are not in k8s.io/api:
// they decode into the local structs below, which list the fields these
// manifests may use (a strict subset of the real schemas).
var kinds = map[string]kindInfo{
	"v1/Namespace":                                  {func() any { return new(corev1.Namespace) }, false},
	"v1/ConfigMap":                                  {func() any { return new(corev1.ConfigMap) }, true},
	"v1/Secret":                                     {func() any { return new(corev1.Secret) }, true},
	"v1/Service":                                    {func() any { return new(corev1.Service) }, true},
	"v1/ServiceAccount":                             {func() any { return new(corev1.ServiceAccount) }, true},
	"apps/v1/DaemonSet":                             {func() any { return new(appsv1.DaemonSet) }, true},
	"apps/v1/Deployment":                            {func() any { return new(appsv1.Deployment) }, true},
	"policy/v1/PodDisruptionBudget":                 {func() any { return new(policyv1.PodDisruptionBudget) }, true},
	monitoringGroup + "/ServiceMonitor":             {func() any { return new(serviceMonitor) }, true},
	monitoringGroup + "/PodMonitor":                 {func() any { return new(podMonitor) }, true},
	"kustomize.config.k8s.io/v1beta1/Kustomization": {func() any { return new(kustomization) }, false},
}

const monitoringGroup = "monitoring.coreos.com/v1"

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector namespaceSelector    `json:"namespaceSelector"`
		Endpoints         []monitorEndpoint    `json:"endpoints"`
	} `json:"spec"`
}

type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector            metav1.LabelSelector `json:"selector"`
		NamespaceSelector   namespaceSelector    `json:"namespaceSelector"`
		PodMetricsEndpoints []monitorEndpoint    `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

type namespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

type monitorEndpoint struct {
	Port     string `json:"port"`
	Path     string `json:"path,omitempty"`
	Interval string `json:"interval,omitempty"`
}

type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Namespace       string   `json:"namespace,omitempty"`
	Resources       []string `json:"resources"`
	Images          []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// decodeFile splits a file into YAML documents and decodes each strictly.
// Documents holding only comments are skipped.
func decodeFile(name string, data []byte) ([]object, []string) {
	var objs []object
	var problems []string
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		src := fmt.Sprintf("%s#%d", name, i)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: read YAML: %v", src, err))
			break
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: invalid YAML: %v", src, err))
			continue
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", src, err))
			continue
		}
		kind := tm.APIVersion + "/" + tm.Kind
		info, ok := kinds[kind]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: unknown kind %q (apiVersion %q): add it to the test's kinds table with its API type", src, tm.Kind, tm.APIVersion))
			continue
		}
		obj := info.newObj()
		// Rejects unknown fields and duplicate keys.
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): strict decode: %v", src, kind, err))
			continue
		}
		objs = append(objs, object{src: src, kind: kind, obj: obj})
	}
	return objs, problems
}

// ---------------------------------------------------------------------------
// Checks

// checker accumulates problems over the decoded objects of all files.
type checker struct {
	files    map[string][]byte
	objs     []object
	problems []string
}

func (c *checker) errorf(src, format string, args ...any) {
	c.problems = append(c.problems, src+": "+fmt.Sprintf(format, args...))
}

// checkManifests decodes every file and runs every check; it returns the
// decoded objects and the problems found (none for good manifests).
func checkManifests(files map[string][]byte) ([]object, []string) {
	c := &checker{files: files}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		objs, problems := decodeFile(n, files[n])
		c.objs = append(c.objs, objs...)
		c.problems = append(c.problems, problems...)
	}
	c.checkMetadata()
	c.checkConfigData()
	ws := c.workloads()
	if !slices.ContainsFunc(ws, func(w workload) bool { return w.kind == "DaemonSet" }) {
		c.errorf("deploy", "no DaemonSet for transparent mode")
	}
	if !slices.ContainsFunc(ws, func(w workload) bool { return w.kind == "Deployment" }) {
		c.errorf("deploy", "no Deployment for explicit mode")
	}
	for _, w := range ws {
		c.checkWorkload(w)
	}
	c.checkImages(ws)
	c.checkServices(ws)
	c.checkPDBs(ws)
	c.checkMonitors(ws)
	c.checkKustomization()
	return c.objs, c.problems
}

func meta(o object) *metav1.ObjectMeta {
	switch v := o.obj.(type) {
	case *corev1.Namespace:
		return &v.ObjectMeta
	case *corev1.ConfigMap:
		return &v.ObjectMeta
	case *corev1.Secret:
		return &v.ObjectMeta
	case *corev1.Service:
		return &v.ObjectMeta
	case *corev1.ServiceAccount:
		return &v.ObjectMeta
	case *appsv1.DaemonSet:
		return &v.ObjectMeta
	case *appsv1.Deployment:
		return &v.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return &v.ObjectMeta
	case *serviceMonitor:
		return &v.ObjectMeta
	case *podMonitor:
		return &v.ObjectMeta
	}
	return nil
}

// find returns the object of the given kind, namespace and name.
func find[T any](c *checker, namespace, name string) (T, bool) {
	for _, o := range c.objs {
		if v, ok := o.obj.(T); ok {
			if m := meta(o); m != nil && m.Namespace == namespace && m.Name == name {
				return v, true
			}
		}
	}
	var zero T
	return zero, false
}

// all returns every object of type T with its source.
func all[T any](c *checker) ([]T, []string) {
	var out []T
	var srcs []string
	for _, o := range c.objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
			srcs = append(srcs, o.src)
		}
	}
	return out, srcs
}

// checkMetadata: names set, namespaced objects in a declared namespace, no
// duplicates.
func (c *checker) checkMetadata() {
	declared := map[string]bool{}
	nss, _ := all[*corev1.Namespace](c)
	for _, ns := range nss {
		declared[ns.Name] = true
	}
	seen := map[string]string{}
	for _, o := range c.objs {
		m := meta(o)
		if m == nil {
			continue
		}
		if m.Name == "" {
			c.errorf(o.src, "%s has no metadata.name", o.kind)
		}
		if kinds[o.kind].namespaced {
			if m.Namespace == "" {
				c.errorf(o.src, "%s %s has no metadata.namespace", o.kind, m.Name)
			} else if !declared[m.Namespace] {
				c.errorf(o.src, "%s %s is in namespace %q, which no Namespace object declares", o.kind, m.Name, m.Namespace)
			}
		} else if m.Namespace != "" {
			c.errorf(o.src, "%s %s is cluster-scoped but sets a namespace", o.kind, m.Name)
		}
		key := o.kind + " " + m.Namespace + "/" + m.Name
		if prev, dup := seen[key]; dup {
			c.errorf(o.src, "duplicate %s (also in %s)", key, prev)
		}
		seen[key] = o.src
	}
}

// checkConfigData: every ConfigMap and Secret key is a pgproxy variable (they
// are all consumed as environment), and secrets never sit in a ConfigMap.
func (c *checker) checkConfigData() {
	cms, srcs := all[*corev1.ConfigMap](c)
	for i, cm := range cms {
		for k := range cm.Data {
			if !config.Known(k) {
				c.errorf(srcs[i], "ConfigMap %s key %s is not a pgproxy variable (config.Known)", cm.Name, k)
			}
			if secretVars[k] {
				c.errorf(srcs[i], "ConfigMap %s holds %s, which can carry a password: use a Secret", cm.Name, k)
			}
		}
		for k := range cm.BinaryData {
			c.errorf(srcs[i], "ConfigMap %s has binaryData key %s; pgproxy reads only text variables", cm.Name, k)
		}
	}
	secrets, srcs := all[*corev1.Secret](c)
	for i, s := range secrets {
		for _, k := range secretKeys(s) {
			if !config.Known(k) {
				c.errorf(srcs[i], "Secret %s key %s is not a pgproxy variable (config.Known)", s.Name, k)
			}
		}
	}
}

// secretVars are the variables that may contain credentials.
var secretVars = map[string]bool{"PG_BACKEND_URL": true}

func secretKeys(s *corev1.Secret) []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	for k := range s.StringData {
		if _, dup := s.Data[k]; !dup {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func secretValue(s *corev1.Secret, key string) (string, bool) {
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// workload is a pod template owner.
type workload struct {
	src, kind, namespace, name string
	selector                   *metav1.LabelSelector
	template                   *corev1.PodTemplateSpec
	replicas                   int32
}

func (c *checker) workloads() []workload {
	var ws []workload
	for _, o := range c.objs {
		switch v := o.obj.(type) {
		case *appsv1.DaemonSet:
			ws = append(ws, workload{o.src, "DaemonSet", v.Namespace, v.Name, v.Spec.Selector, &v.Spec.Template, 0})
		case *appsv1.Deployment:
			replicas := int32(1)
			if v.Spec.Replicas != nil {
				replicas = *v.Spec.Replicas
			}
			ws = append(ws, workload{o.src, "Deployment", v.Namespace, v.Name, v.Spec.Selector, &v.Spec.Template, replicas})
		}
	}
	return ws
}

// selects reports whether a label selector matches a label set.
func selects(sel *metav1.LabelSelector, l map[string]string) (bool, error) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return false, errors.New("empty selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(l)), nil
}

// envVar is one variable of a container's effective environment.
type envVar struct {
	value  string
	source string // "literal", "fieldRef", "configmap <name>", "secret <name>"
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// sampleFieldValues stand in for downward-API values when the environment is
// resolved.
var sampleFieldValues = map[string]string{
	"status.hostIP":  "10.0.0.1",
	"status.podIP":   "10.0.0.2",
	"spec.nodeName":  "node-1",
	"metadata.name":  "pod-1",
	"status.hostIPs": "10.0.0.1",
}

// environment resolves a container's environment the way the kubelet does
// (envFrom first, then env in order with $(VAR) expanded from what is
// already defined) and checks every name and reference on the way.
func (c *checker) environment(w workload, ct *corev1.Container) map[string]envVar {
	src := fmt.Sprintf("%s %s/%s container %s", w.src, w.kind, w.name, ct.Name)
	env := map[string]envVar{}
	for _, ef := range ct.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := find[*corev1.ConfigMap](c, w.namespace, ef.ConfigMapRef.Name)
			if !ok {
				if ef.ConfigMapRef.Optional == nil || !*ef.ConfigMapRef.Optional {
					c.errorf(src, "envFrom ConfigMap %s not found in namespace %s", ef.ConfigMapRef.Name, w.namespace)
				}
				continue
			}
			for k, v := range cm.Data {
				name := ef.Prefix + k
				if !config.Known(name) {
					c.errorf(src, "envFrom ConfigMap %s gives %s, not a pgproxy variable (config.Known)", cm.Name, name)
				}
				env[name] = envVar{v, "configmap " + cm.Name}
			}
		case ef.SecretRef != nil:
			s, ok := find[*corev1.Secret](c, w.namespace, ef.SecretRef.Name)
			if !ok {
				if ef.SecretRef.Optional == nil || !*ef.SecretRef.Optional {
					c.errorf(src, "envFrom Secret %s not found in namespace %s", ef.SecretRef.Name, w.namespace)
				}
				continue
			}
			for _, k := range secretKeys(s) {
				name := ef.Prefix + k
				if !config.Known(name) {
					c.errorf(src, "envFrom Secret %s gives %s, not a pgproxy variable (config.Known)", s.Name, name)
				}
				v, _ := secretValue(s, k)
				env[name] = envVar{v, "secret " + s.Name}
			}
		default:
			c.errorf(src, "envFrom entry with neither configMapRef nor secretRef")
		}
	}
	for i, e := range ct.Env {
		// A name that is not a pgproxy variable is allowed only as a
		// downward-API helper that a later pgproxy variable expands.
		if !config.Known(e.Name) {
			usedLater := false
			for _, later := range ct.Env[i+1:] {
				if config.Known(later.Name) && strings.Contains(later.Value, "$("+e.Name+")") {
					usedLater = true
				}
			}
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || !usedLater {
				c.errorf(src, "env %s is not a pgproxy variable (config.Known); only a downward-API helper expanded by a later variable may be", e.Name)
			}
		}
		switch {
		case e.ValueFrom == nil:
			v := envRef.ReplaceAllStringFunc(e.Value, func(ref string) string {
				name := ref[2 : len(ref)-1]
				if d, ok := env[name]; ok {
					return d.value
				}
				c.errorf(src, "env %s refers to $(%s), which is not defined before it (Kubernetes would leave it unexpanded)", e.Name, name)
				return ref
			})
			env[e.Name] = envVar{v, "literal"}
		case e.ValueFrom.FieldRef != nil:
			v, ok := sampleFieldValues[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				c.errorf(src, "env %s: fieldRef %s has no sample value in this test", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = envVar{v, "fieldRef"}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			s, ok := find[*corev1.Secret](c, w.namespace, ref.Name)
			if !ok {
				if !optional {
					c.errorf(src, "env %s: Secret %s not found in namespace %s", e.Name, ref.Name, w.namespace)
				}
				continue
			}
			v, ok := secretValue(s, ref.Key)
			if !ok {
				if !optional {
					c.errorf(src, "env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
				}
				continue
			}
			if !config.Known(ref.Key) {
				c.errorf(src, "env %s: Secret %s key %s is not a pgproxy variable", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = envVar{v, "secret " + s.Name}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			optional := ref.Optional != nil && *ref.Optional
			cm, ok := find[*corev1.ConfigMap](c, w.namespace, ref.Name)
			if !ok {
				if !optional {
					c.errorf(src, "env %s: ConfigMap %s not found in namespace %s", e.Name, ref.Name, w.namespace)
				}
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if !optional {
					c.errorf(src, "env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
				}
				continue
			}
			if !config.Known(ref.Key) {
				c.errorf(src, "env %s: ConfigMap %s key %s is not a pgproxy variable", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = envVar{v, "configmap " + cm.Name}
		default:
			c.errorf(src, "env %s: valueFrom kind not handled by this test", e.Name)
		}
	}
	for name := range secretVars {
		if v, ok := env[name]; ok && !strings.HasPrefix(v.source, "secret ") {
			c.errorf(src, "%s comes from %s; it can carry a password and must come from a Secret", name, v.source)
		}
	}
	return env
}

func lookup(env map[string]envVar, name string) string {
	if v, ok := env[name]; ok {
		return v.value
	}
	for _, v := range config.Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

func portOf(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return int32(n), err
}

// resolvePort turns a probe or Service target port into a number.
func resolvePort(ct *corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, p.IntVal > 0
	}
	for _, cp := range ct.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func (c *checker) checkWorkload(w workload) {
	src := fmt.Sprintf("%s %s/%s", w.src, w.kind, w.name)
	spec := &w.template.Spec
	if ok, err := selects(w.selector, w.template.Labels); err != nil || !ok {
		c.errorf(src, "spec.selector does not match the pod template labels (%v)", err)
	}
	if sa := spec.ServiceAccountName; sa != "" {
		if _, ok := find[*corev1.ServiceAccount](c, w.namespace, sa); !ok {
			c.errorf(src, "serviceAccountName %s: no such ServiceAccount in namespace %s", sa, w.namespace)
		}
	} else {
		c.errorf(src, "no serviceAccountName: give the pods their own ServiceAccount")
	}
	if len(spec.Containers) != 1 {
		c.errorf(src, "want exactly one container, have %d", len(spec.Containers))
		return
	}
	ct := &spec.Containers[0]
	csrc := src + " container " + ct.Name
	env := c.environment(w, ct)
	agentMode := len(ct.Args) > 0 && ct.Args[0] == "agent"
	if len(ct.Command) > 0 {
		c.errorf(csrc, "command overrides the image's entrypoint; use args")
	}
	switch w.kind {
	case "DaemonSet":
		if !agentMode {
			c.errorf(csrc, "a DaemonSet runs transparent mode: args must start with \"agent\", have %q", ct.Args)
		}
	case "Deployment":
		if agentMode || len(ct.Args) > 0 {
			c.errorf(csrc, "the Deployment runs explicit mode: no args, have %q", ct.Args)
		}
	}

	// The configuration pgproxy would see must load.
	c.checkConfigLoads(csrc, env, agentMode)

	// Health port: probes, annotation and a named container port agree.
	healthAddr := lookup(env, "HEALTH_CHECK_ADDR")
	healthPort, err := portOf(healthAddr)
	if err != nil {
		c.errorf(csrc, "HEALTH_CHECK_ADDR %q: %v", healthAddr, err)
	}
	if !slices.ContainsFunc(ct.Ports, func(p corev1.ContainerPort) bool {
		return p.ContainerPort == healthPort && p.Name != ""
	}) {
		c.errorf(csrc, "no named container port for the health port %d (HEALTH_CHECK_ADDR %s)", healthPort, healthAddr)
	}
	checkProbe := func(what string, p *corev1.Probe, paths ...string) {
		if p == nil {
			c.errorf(csrc, "no %s", what)
			return
		}
		if p.HTTPGet == nil {
			c.errorf(csrc, "%s is not an httpGet probe", what)
			return
		}
		if !slices.Contains(paths, p.HTTPGet.Path) {
			c.errorf(csrc, "%s path %q, want one of %q", what, p.HTTPGet.Path, paths)
		}
		if port, ok := resolvePort(ct, p.HTTPGet.Port); !ok || port != healthPort {
			c.errorf(csrc, "%s port %s is %d, not the health port %d (HEALTH_CHECK_ADDR %s)", what, p.HTTPGet.Port.String(), port, healthPort, healthAddr)
		}
	}
	checkProbe("readinessProbe", ct.ReadinessProbe, "/ready")
	checkProbe("livenessProbe", ct.LivenessProbe, "/health")
	if ct.StartupProbe != nil {
		checkProbe("startupProbe", ct.StartupProbe, "/health", "/ready")
	}
	ann := w.template.Annotations
	if ann["prometheus.io/scrape"] != "true" {
		c.errorf(src, "pod annotation prometheus.io/scrape must be \"true\", have %q", ann["prometheus.io/scrape"])
	}
	if ann["prometheus.io/port"] != strconv.Itoa(int(healthPort)) {
		c.errorf(src, "pod annotation prometheus.io/port %q, want the health port %d", ann["prometheus.io/port"], healthPort)
	}
	if ann["prometheus.io/path"] != "/metrics" {
		c.errorf(src, "pod annotation prometheus.io/path %q, want /metrics", ann["prometheus.io/path"])
	}

	// The PostgreSQL listener is a container port named postgres.
	listenVar := "LISTEN_ADDR"
	if agentMode {
		listenVar = "AGENT_LISTEN_ADDR"
	}
	if lp, err := portOf(lookup(env, listenVar)); err != nil {
		c.errorf(csrc, "%s %q: %v", listenVar, lookup(env, listenVar), err)
	} else if !slices.ContainsFunc(ct.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == "postgres" && p.ContainerPort == lp
	}) {
		c.errorf(csrc, "no container port named postgres for %s port %d", listenVar, lp)
	}
	for _, p := range ct.Ports {
		if spec.HostNetwork && p.HostPort != 0 && p.HostPort != p.ContainerPort {
			c.errorf(csrc, "port %s: with hostNetwork hostPort must equal containerPort", p.Name)
		}
	}

	// Graceful drain fits in the grace period.
	drainText := lookup(env, "SHUTDOWN_DRAIN_TIMEOUT")
	drain, err := time.ParseDuration(drainText)
	if err != nil {
		c.errorf(csrc, "SHUTDOWN_DRAIN_TIMEOUT %q: %v", drainText, err)
	}
	var preStop time.Duration
	if ct.Lifecycle != nil && ct.Lifecycle.PreStop != nil {
		if ct.Lifecycle.PreStop.Sleep != nil {
			preStop = time.Duration(ct.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		} else {
			c.errorf(csrc, "preStop must be a sleep action (the image has no shell)")
		}
	}
	grace := 30 * time.Second
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace <= drain+preStop {
		c.errorf(src, "terminationGracePeriodSeconds %v must exceed preStop %v + SHUTDOWN_DRAIN_TIMEOUT %v", grace, preStop, drain)
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := ct.Resources.Requests[r]; !ok || q.IsZero() {
			c.errorf(csrc, "no resources.requests.%s", r)
		}
	}
	if q, ok := ct.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		c.errorf(csrc, "no resources.limits.memory")
	}

	// Rules the API server would enforce on create.
	sc := ct.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	privileged := sc.Privileged != nil && *sc.Privileged
	var added []string
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Add {
			added = append(added, string(cp))
		}
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && (privileged || slices.Contains(added, "SYS_ADMIN")) {
		c.errorf(csrc, "allowPrivilegeEscalation: false is rejected by the API together with privileged or CAP_SYS_ADMIN")
	}
	for _, m := range ct.VolumeMounts {
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional && !privileged {
			c.errorf(csrc, "volumeMount %s: Bidirectional propagation is only allowed in privileged containers", m.Name)
		}
	}
	if spec.HostNetwork && spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		c.errorf(src, "hostNetwork pods need dnsPolicy ClusterFirstWithHostNet to resolve cluster names, have %q", spec.DNSPolicy)
	}
	ns, _ := find[*corev1.Namespace](c, "", w.namespace)
	level := ""
	if ns != nil {
		level = ns.Labels["pod-security.kubernetes.io/enforce"]
	}

	if agentMode {
		c.checkAgent(w, ct, env, sc, privileged, added, level)
	} else {
		c.checkExplicit(w, ct, sc, level)
	}
}

// checkConfigLoads runs config.Load (config.LoadAgent for the agent) on the
// resolved environment, and for the agent parses the agent variables as
// cmd/pgproxy does.
func (c *checker) checkConfigLoads(src string, env map[string]envVar, agentMode bool) {
	getenv := func(name string) string { return env[name].value }
	load := config.Load
	if agentMode {
		load = config.LoadAgent
	}
	if _, err := load(getenv); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			// Files (certificates, CA bundles) exist only in the pod.
			if line != "" && !strings.Contains(line, "cannot be read") {
				c.errorf(src, "config.Load: %s", line)
			}
		}
	}
	if !agentMode {
		for _, v := range config.Vars {
			if _, set := env[v.Name]; set && v.Section == config.SectionAgent {
				c.errorf(src, "%s is an agent variable, set in explicit mode", v.Name)
			}
		}
		return
	}
	targets, err := agent.ParseTargets(getenv("INTERCEPT_TARGETS"))
	if err != nil {
		c.errorf(src, "INTERCEPT_TARGETS: %v", err)
	} else if len(targets) == 0 {
		c.errorf(src, "INTERCEPT_TARGETS is empty: the agent would refuse to start")
	}
	mode := strings.ToLower(getenv("INTERCEPT_MODE"))
	switch mode {
	case "", "connect":
	case "tproxy":
		if strings.TrimSpace(getenv("TPROXY_INTERFACES")) == "" {
			c.errorf(src, "INTERCEPT_MODE=tproxy needs TPROXY_INTERFACES")
		}
	default:
		c.errorf(src, "INTERCEPT_MODE %q: want connect or tproxy", mode)
	}
	if _, err := netip.ParseAddrPort(lookup(env, "AGENT_LISTEN_ADDR")); err != nil {
		c.errorf(src, "AGENT_LISTEN_ADDR %q: %v", lookup(env, "AGENT_LISTEN_ADDR"), err)
	}
	for _, a := range strings.Split(getenv("AGENT_REDIRECT_ADDRS"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			if _, err := netip.ParseAddrPort(a); err != nil {
				c.errorf(src, "AGENT_REDIRECT_ADDRS %q: %v", a, err)
			}
		}
	}
	for _, b := range []string{"ACCELERATE_LOCAL", "BPF_FAIL_CLOSED"} {
		switch strings.ToLower(getenv(b)) {
		case "", "true", "false", "1", "0", "yes", "no", "on", "off":
		case "auto":
			if b != "ACCELERATE_LOCAL" {
				c.errorf(src, "%s=%q must be true or false", b, getenv(b))
			}
		default:
			c.errorf(src, "%s=%q must be true or false", b, getenv(b))
		}
	}
	if strings.EqualFold(getenv("BPF_FAIL_CLOSED"), "true") && getenv("BPF_PIN_PATH") == "" {
		c.errorf(src, "BPF_FAIL_CLOSED=true needs BPF_PIN_PATH")
	}
}

// agentCaps are the capabilities transparent mode needs.
var agentCaps = []string{"BPF", "NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"}

func (c *checker) checkAgent(w workload, ct *corev1.Container, env map[string]envVar, sc *corev1.SecurityContext, privileged bool, added []string, level string) {
	src := fmt.Sprintf("%s %s/%s", w.src, w.kind, w.name)
	spec := &w.template.Spec
	if w.kind != "DaemonSet" {
		c.errorf(src, "transparent mode must run as a DaemonSet (one agent per node)")
	}
	for _, cp := range agentCaps {
		if !slices.Contains(added, cp) {
			c.errorf(src, "agent container lacks capability %s (needs %s)", cp, strings.Join(agentCaps, ", "))
		}
	}
	if privileged {
		c.errorf(src, "agent container is privileged; the listed capabilities are enough")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		c.errorf(src, "agent container should drop ALL capabilities before adding its own")
	}
	uid := effectiveUID(spec.SecurityContext, sc)
	if uid == nil || *uid != 0 {
		c.errorf(src, "agent must run as uid 0 (runAsUser: 0): added capabilities are effective only for root")
	}
	if !spec.HostNetwork {
		c.errorf(src, "agent needs hostNetwork: pods are redirected to the node's address")
	}
	if !slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool {
		return t.Key == "" && t.Operator == corev1.TolerationOpExists && t.Effect == ""
	}) {
		c.errorf(src, "agent needs a toleration {operator: Exists} to run on every node")
	}
	if level != "privileged" {
		c.errorf(src, "namespace %s enforces Pod Security %q; the agent (hostNetwork, hostPath, capabilities) needs privileged", w.namespace, level)
	}
	// Host mounts: cgroup2 tree and bpffs.
	mountOf := func(hostPath string) *corev1.VolumeMount {
		for _, v := range spec.Volumes {
			if v.HostPath == nil || path.Clean(v.HostPath.Path) != hostPath {
				continue
			}
			for i := range ct.VolumeMounts {
				if ct.VolumeMounts[i].Name == v.Name {
					return &ct.VolumeMounts[i]
				}
			}
		}
		return nil
	}
	under := func(p, dir string) bool {
		p = path.Clean(p)
		return p == dir || strings.HasPrefix(p, dir+"/")
	}
	if m := mountOf("/sys/fs/cgroup"); m == nil {
		c.errorf(src, "agent has no hostPath volume for /sys/fs/cgroup mounted in its container")
	} else if cg := lookup(env, "INTERCEPT_CGROUP"); cg == "" || !under(cg, m.MountPath) {
		c.errorf(src, "INTERCEPT_CGROUP %q must be set and lie under the host cgroup mount %s (the container's own /sys/fs/cgroup is only its own cgroup)", cg, m.MountPath)
	}
	if m := mountOf("/sys/fs/bpf"); m == nil {
		c.errorf(src, "agent has no hostPath volume for /sys/fs/bpf mounted in its container")
	} else {
		if m.MountPropagation == nil || *m.MountPropagation == corev1.MountPropagationNone {
			c.errorf(src, "bpffs mount %s needs mountPropagation (HostToContainer)", m.Name)
		}
		if m.ReadOnly {
			c.errorf(src, "bpffs mount %s is read-only; pinning writes to it", m.Name)
		}
		if pin := lookup(env, "BPF_PIN_PATH"); pin != "" && !under(pin, m.MountPath) {
			c.errorf(src, "BPF_PIN_PATH %q is not under the host bpffs mount %s", pin, m.MountPath)
		}
	}
}

func effectiveUID(pod *corev1.PodSecurityContext, ct *corev1.SecurityContext) *int64 {
	if ct != nil && ct.RunAsUser != nil {
		return ct.RunAsUser
	}
	if pod != nil {
		return pod.RunAsUser
	}
	return nil
}

func (c *checker) checkExplicit(w workload, ct *corev1.Container, sc *corev1.SecurityContext, level string) {
	src := fmt.Sprintf("%s %s/%s", w.src, w.kind, w.name)
	spec := &w.template.Spec
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		c.errorf(src, "explicit mode must set runAsNonRoot: true")
	}
	if uid := effectiveUID(pod, sc); uid == nil || *uid == 0 {
		c.errorf(src, "explicit mode must run as a non-zero uid (the image's 65532)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		c.errorf(src, "explicit mode must set readOnlyRootFilesystem: true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.errorf(src, "explicit mode must set allowPrivilegeEscalation: false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		c.errorf(src, "explicit mode must not be privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		c.errorf(src, "explicit mode must drop ALL capabilities and add none")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		c.errorf(src, "explicit mode must use seccompProfile RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		c.errorf(src, "explicit mode must not use host namespaces")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			c.errorf(src, "explicit mode must not mount hostPath %s", v.HostPath.Path)
		}
	}
	if level != "restricted" {
		c.errorf(src, "namespace %s enforces Pod Security %q; explicit mode meets and should be held to restricted", w.namespace, level)
	}
}

// imageRepo strips the tag or digest from an image reference.
func imageRepo(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// checkImages: every container runs the same image repository, which the
// kustomization's images entry names.
func (c *checker) checkImages(ws []workload) {
	repos := map[string][]string{}
	for _, w := range ws {
		for _, ct := range append(w.template.Spec.InitContainers, w.template.Spec.Containers...) {
			if ct.Image == "" {
				c.errorf(w.src, "%s/%s container %s has no image", w.kind, w.name, ct.Name)
				continue
			}
			repos[imageRepo(ct.Image)] = append(repos[imageRepo(ct.Image)], w.kind+"/"+w.name)
		}
	}
	if len(repos) > 1 {
		c.errorf("deploy", "containers use different images: %v (both modes ship in one image)", repos)
	}
	ks, srcs := all[*kustomization](c)
	for i, k := range ks {
		for _, img := range k.Images {
			if _, ok := repos[img.Name]; !ok {
				c.errorf(srcs[i], "images entry %q matches no container image %v", img.Name, repos)
			}
		}
	}
}

// checkServices: each Service selects exactly one workload's pods, and its
// target ports are ports of that workload's container.
func (c *checker) checkServices(ws []workload) {
	svcs, srcs := all[*corev1.Service](c)
	postgresService := false
	for i, svc := range svcs {
		src := srcs[i] + " Service/" + svc.Name
		var matched []workload
		for _, w := range ws {
			if w.namespace != svc.Namespace {
				continue
			}
			if ok, err := selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, w.template.Labels); err != nil {
				c.errorf(src, "selector: %v", err)
			} else if ok {
				matched = append(matched, w)
			}
		}
		if len(matched) != 1 {
			c.errorf(src, "selector %v matches %d workloads' pods, want exactly 1", svc.Spec.Selector, len(matched))
			continue
		}
		w := matched[0]
		ct := &w.template.Spec.Containers[0]
		for _, p := range svc.Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			port, ok := resolvePort(ct, tp)
			if !ok || !slices.ContainsFunc(ct.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == port }) {
				c.errorf(src, "port %s targets %s, which is no port of %s/%s", p.Name, tp.String(), w.kind, w.name)
			}
			if p.Port == 5432 && w.kind == "Deployment" && tp.String() == "postgres" {
				postgresService = true
			}
		}
	}
	if !postgresService {
		c.errorf("deploy", "no Service exposes the explicit-mode Deployment's postgres port on 5432")
	}
}

// checkPDBs: each PodDisruptionBudget selects a Deployment and allows at
// least one voluntary disruption.
func (c *checker) checkPDBs(ws []workload) {
	pdbs, srcs := all[*policyv1.PodDisruptionBudget](c)
	for i, pdb := range pdbs {
		src := srcs[i] + " PodDisruptionBudget/" + pdb.Name
		var target *workload
		for j, w := range ws {
			if ok, _ := selects(pdb.Spec.Selector, w.template.Labels); ok && w.namespace == pdb.Namespace {
				target = &ws[j]
			}
		}
		if target == nil {
			c.errorf(src, "selector matches no workload's pods")
			continue
		}
		if m := pdb.Spec.MinAvailable; m != nil && m.Type == intstr.Int && target.kind == "Deployment" && m.IntVal >= target.replicas {
			c.errorf(src, "minAvailable %d >= replicas %d: no node could ever be drained", m.IntVal, target.replicas)
		}
	}
	for _, w := range ws {
		if w.kind == "Deployment" && !slices.ContainsFunc(pdbs, func(p *policyv1.PodDisruptionBudget) bool {
			ok, _ := selects(p.Spec.Selector, w.template.Labels)
			return ok && p.Namespace == w.namespace
		}) {
			c.errorf(w.src, "Deployment/%s has no PodDisruptionBudget", w.name)
		}
	}
}

// checkMonitors: ServiceMonitors select a Service and name one of its ports;
// PodMonitors select a workload and name one of its container ports.
func (c *checker) checkMonitors(ws []workload) {
	inNamespaces := func(sel namespaceSelector, own, ns string) bool {
		if sel.Any {
			return true
		}
		if len(sel.MatchNames) == 0 {
			return ns == own
		}
		return slices.Contains(sel.MatchNames, ns)
	}
	sms, srcs := all[*serviceMonitor](c)
	svcs, _ := all[*corev1.Service](c)
	for i, sm := range sms {
		src := srcs[i] + " ServiceMonitor/" + sm.Name
		var svc *corev1.Service
		for _, s := range svcs {
			if ok, _ := selects(&sm.Spec.Selector, s.Labels); ok && inNamespaces(sm.Spec.NamespaceSelector, sm.Namespace, s.Namespace) {
				svc = s
			}
		}
		if svc == nil {
			c.errorf(src, "selects no Service")
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			c.errorf(src, "no endpoints")
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				c.errorf(src, "endpoint port %q is not a port name of Service %s", ep.Port, svc.Name)
			}
			if ep.Path != "/metrics" {
				c.errorf(src, "endpoint path %q, want /metrics", ep.Path)
			}
		}
	}
	pms, srcs := all[*podMonitor](c)
	for i, pm := range pms {
		src := srcs[i] + " PodMonitor/" + pm.Name
		var target *workload
		for j, w := range ws {
			if ok, _ := selects(&pm.Spec.Selector, w.template.Labels); ok && inNamespaces(pm.Spec.NamespaceSelector, pm.Namespace, w.namespace) {
				target = &ws[j]
			}
		}
		if target == nil {
			c.errorf(src, "selects no workload's pods")
			continue
		}
		if len(pm.Spec.PodMetricsEndpoints) == 0 {
			c.errorf(src, "no podMetricsEndpoints")
		}
		ct := &target.template.Spec.Containers[0]
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if _, ok := resolvePort(ct, intstr.FromString(ep.Port)); !ok {
				c.errorf(src, "endpoint port %q is not a port name of %s/%s", ep.Port, target.kind, target.name)
			}
			if ep.Path != "/metrics" {
				c.errorf(src, "endpoint path %q, want /metrics", ep.Path)
			}
		}
	}
}

// checkKustomization: listed resources exist; every manifest file is listed,
// except files holding only Prometheus-operator objects (their CRDs may be
// missing from a cluster).
func (c *checker) checkKustomization() {
	ks, srcs := all[*kustomization](c)
	if len(ks) != 1 {
		c.errorf("deploy", "want one kustomization.yaml, have %d", len(ks))
		return
	}
	listed := map[string]bool{}
	for _, r := range ks[0].Resources {
		listed[r] = true
		if _, ok := c.files[r]; !ok {
			c.errorf(srcs[0], "resource %s does not exist in deploy/", r)
		}
	}
	optional := map[string]bool{}
	for _, o := range c.objs {
		file := strings.SplitN(o.src, "#", 2)[0]
		if _, seen := optional[file]; !seen {
			optional[file] = true
		}
		if !strings.HasPrefix(o.kind, monitoringGroup+"/") {
			optional[file] = false
		}
	}
	for f := range c.files {
		if f == "kustomization.yaml" || listed[f] || optional[f] {
			continue
		}
		c.errorf(srcs[0], "%s is not listed in resources", f)
	}
}
