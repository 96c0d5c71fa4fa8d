package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/httpserver"
	"github.com/recording-storage/recording-storage/pipeline"
)

// Paths relative to this package's directory.
const (
	chartDir       = "helm/recording-storage"
	fullValues     = chartDir + "/ci/full-values.yaml"
	topologyFile   = chartDir + "/files/topology.json"
	helmBin        = "../.emu/bin/helm"
	kedaCRD        = "../.emu/keda/keda.sh_scaledobjects.yaml"
	toolsHint      = "run .ci/deploy-tools (make test and make deploy-check do) to build helm and fetch KEDA's CRD into .emu/"
	kedaAPIVersion = "keda.sh/v1alpha1"
)

// tool returns the path of a tool .ci/deploy-tools provides, failing the
// test when it is missing.
func tool(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: %s", path, toolsHint)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// helm runs helm with args and returns its standard output.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool(t, helmBin), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// No user configuration or cache of this machine's helm.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.Bytes()
}

// rendered is the output of helm template, decoded.
type rendered struct {
	deployments     map[string]appsv1.Deployment
	configMaps      map[string]corev1.ConfigMap
	secrets         map[string]corev1.Secret
	serviceAccounts map[string]corev1.ServiceAccount
	services        map[string]corev1.Service
	pdbs            map[string]policyv1.PodDisruptionBudget
	networkPolicies map[string]networkingv1.NetworkPolicy
	serviceMonitors map[string]monitoringv1.ServiceMonitor
	scaledObjects   map[string]map[string]any
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// render runs helm template with the values files (none: the defaults) and
// decodes every object strictly into its Kubernetes API type: an unknown
// field, a wrong type or an unknown kind fails the test. ScaledObjects are
// validated against KEDA's CRD schema.
func render(t *testing.T, values ...string) rendered {
	t.Helper()
	args := []string{"template", "rs", chartDir}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	out := helm(t, args...)
	kedaSchema := scaledObjectSchema(t)
	r := rendered{deployments: map[string]appsv1.Deployment{}, configMaps: map[string]corev1.ConfigMap{},
		secrets: map[string]corev1.Secret{}, serviceAccounts: map[string]corev1.ServiceAccount{},
		services: map[string]corev1.Service{}, pdbs: map[string]policyv1.PodDisruptionBudget{},
		networkPolicies: map[string]networkingv1.NetworkPolicy{}, serviceMonitors: map[string]monitoringv1.ServiceMonitor{},
		scaledObjects: map[string]map[string]any{}}
	for _, doc := range docSeparator.Split(string(out), -1) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("cannot read a rendered document: %v\n%s", err, doc)
		}
		if head.Kind == "" {
			continue // comments only
		}
		name := head.Metadata.Name
		var err error
		switch key := head.APIVersion + " " + head.Kind; key {
		case "apps/v1 Deployment":
			err = decodeInto(doc, name, r.deployments)
		case "v1 ConfigMap":
			err = decodeInto(doc, name, r.configMaps)
		case "v1 Secret":
			err = decodeInto(doc, name, r.secrets)
		case "v1 ServiceAccount":
			err = decodeInto(doc, name, r.serviceAccounts)
		case "v1 Service":
			err = decodeInto(doc, name, r.services)
		case "policy/v1 PodDisruptionBudget":
			err = decodeInto(doc, name, r.pdbs)
		case "networking.k8s.io/v1 NetworkPolicy":
			err = decodeInto(doc, name, r.networkPolicies)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			err = decodeInto(doc, name, r.serviceMonitors)
		case kedaAPIVersion + " ScaledObject":
			var obj map[string]any
			if err = decodeJSON(doc, &obj); err == nil {
				if err = kedaSchema.Validate(obj); err == nil {
					r.scaledObjects[name] = obj
				}
			}
		default:
			err = fmt.Errorf("unexpected object %s", key)
		}
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", head.Kind, name, err, doc)
		}
	}
	return r
}

// decodeInto decodes doc strictly into a new T stored under name.
func decodeInto[T any](doc, name string, into map[string]T) error {
	if _, dup := into[name]; dup {
		return fmt.Errorf("rendered twice")
	}
	var v T
	if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
		return fmt.Errorf("does not decode strictly into %T: %w", v, err)
	}
	into[name] = v
	return nil
}

// decodeJSON turns a YAML document into the generic JSON values the schema
// validator takes.
func decodeJSON(doc string, into *map[string]any) error {
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("not an object")
	}
	*into = m
	return nil
}

// scaledObjectSchema compiles the openAPIV3Schema of KEDA's ScaledObject
// CRD (v1alpha1). As the API server prunes fields a structural schema does
// not declare, every object schema with properties, unless it preserves
// unknown fields, gets additionalProperties false: an unknown field fails.
func scaledObjectSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(tool(t, kedaCRD))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("%s: %v", kedaCRD, err)
	}
	if crd.Spec.Names.Kind != "ScaledObject" {
		t.Fatalf("%s is the CRD of %q, not ScaledObject", kedaCRD, crd.Spec.Names.Kind)
	}
	for _, v := range crd.Spec.Versions {
		if kedaAPIVersion != "keda.sh/"+v.Name {
			continue
		}
		schema := v.Schema.OpenAPIV3Schema
		closeObjects(schema)
		// Round trip, so that numbers are what the compiler expects.
		js, err := json.Marshal(schema)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("keda-scaledobject.json", doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile("keda-scaledobject.json")
		if err != nil {
			t.Fatalf("cannot compile KEDA's ScaledObject schema: %v", err)
		}
		return s
	}
	t.Fatalf("%s has no version %s", kedaCRD, kedaAPIVersion)
	return nil
}

// closeObjects sets additionalProperties false on every schema below s that
// lists properties and neither allows additional ones nor preserves unknown
// fields.
func closeObjects(s map[string]any) {
	_, hasProps := s["properties"]
	_, hasAdditional := s["additionalProperties"]
	preserve, _ := s["x-kubernetes-preserve-unknown-fields"].(bool)
	if hasProps && !hasAdditional && !preserve {
		s["additionalProperties"] = false
	}
	for _, key := range []string{"properties", "patternProperties"} {
		if props, ok := s[key].(map[string]any); ok {
			for _, p := range props {
				if ps, ok := p.(map[string]any); ok {
					closeObjects(ps)
				}
			}
		}
	}
	for _, key := range []string{"items", "additionalProperties", "not"} {
		if ps, ok := s[key].(map[string]any); ok {
			closeObjects(ps)
		}
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := s[key].([]any); ok {
			for _, p := range list {
				if ps, ok := p.(map[string]any); ok {
					closeObjects(ps)
				}
			}
		}
	}
}

// TestChart_lint: helm lint passes, warnings included, with the defaults
// and with every option set.
func TestChart_lint(t *testing.T) {
	helm(t, "lint", "--strict", chartDir)
	helm(t, "lint", "--strict", chartDir, "-f", fullValues)
}

// TestChart_scaledObject_schema: the schema check refuses what KEDA would:
// an unknown field, a wrong type, a trigger without type.
func TestChart_scaledObject_schema(t *testing.T) {
	s := scaledObjectSchema(t)
	valid := func() map[string]any {
		return map[string]any{"apiVersion": kedaAPIVersion, "kind": "ScaledObject", "metadata": map[string]any{"name": "x"},
			"spec": map[string]any{"scaleTargetRef": map[string]any{"name": "x"}, "minReplicaCount": json.Number("1"),
				"triggers": []any{map[string]any{"type": "aws-sqs-queue", "metadata": map[string]any{"queueURL": "q"}}}}}
	}
	tests := []struct {
		name    string
		mutate  func(o map[string]any)
		wantErr bool
	}{
		{name: "valid", mutate: func(map[string]any) {}},
		{name: "unknown_spec_field", mutate: func(o map[string]any) { o["spec"].(map[string]any)["replicas"] = json.Number("2") }, wantErr: true},
		{name: "wrong_type", mutate: func(o map[string]any) { o["spec"].(map[string]any)["minReplicaCount"] = "one" }, wantErr: true},
		{name: "trigger_without_type", mutate: func(o map[string]any) {
			delete(o["spec"].(map[string]any)["triggers"].([]any)[0].(map[string]any), "type")
		}, wantErr: true},
		{name: "no_scale_target", mutate: func(o map[string]any) { delete(o["spec"].(map[string]any), "scaleTargetRef") }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.mutate(o)
			err := s.Validate(any(o))
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate: %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

// TestChart_topology_file: the chart's files/topology.json is what
// `recording-storage topology --json` prints for the default configuration,
// so the chart's queues are the service's.
func TestChart_topology_file(t *testing.T) {
	got, err := os.ReadFile(topologyFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(pipeline.NewTopology(conf.Default()), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), want) {
		t.Errorf("%s is out of date: run `go run . topology --json > deploy/%s` at the repository root", topologyFile, topologyFile)
	}
}

// TestChart_agrees_with_service: for the defaults and for every option
// set, each Deployment runs a valid stage list with a configuration the
// service loads, probes the service's own endpoints on its port, gives it
// longer to stop than it takes, requests the memory its transfers may hold,
// mounts the instance secret only where its stages need it, and is scaled
// on exactly the queues its stages read.
func TestChart_agrees_with_service(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		grace  int64
	}{
		{name: "defaults", grace: 40},
		{name: "full_values", values: []string{fullValues}, grace: 45},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.values...)
			drain := drainTimeout(t, tt.values...)
			if len(r.configMaps) != 1 {
				t.Fatalf("%d ConfigMaps, want 1", len(r.configMaps))
			}
			var cm corev1.ConfigMap
			for _, c := range r.configMaps {
				cm = c
			}
			cfgFile := filepath.Join(t.TempDir(), "recording-storage.yaml")
			if err := os.WriteFile(cfgFile, []byte(cm.Data["recording-storage.yaml"]), 0o600); err != nil {
				t.Fatal(err)
			}
			image := imageEnv(t)

			stageRuns := map[string]int{}
			for name, d := range r.deployments {
				pod := d.Spec.Template.Spec
				if len(pod.Containers) != 1 {
					t.Fatalf("%s: %d containers", name, len(pod.Containers))
				}
				c := pod.Containers[0]
				if len(c.Args) != 3 || c.Args[0] != "run" || c.Args[1] != "--stages" {
					t.Fatalf("%s: args %q, want run --stages LIST", name, c.Args)
				}
				stages, err := pipeline.SelectStages(strings.Split(c.Args[2], ","))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				// What the service loads: the file, with the image's and the
				// container's variables (not this machine's).
				env := maps.Clone(image)
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				cfg, err := conf.Load(cfgFile, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
				if err != nil {
					t.Fatalf("%s: the service refuses the chart's configuration: %v", name, err)
				}
				topo := pipeline.NewTopology(cfg)
				host, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
				if host != "0.0.0.0" && host != "" {
					t.Errorf("%s: the service listens on %s, which the kubelet cannot reach", name, cfg.HTTP.Listen)
				}
				for _, st := range stages {
					stageRuns[st]++
				}

				// The configuration the container reads is the ConfigMap's.
				if got := envValue(c, conf.EnvConfigFile); got == "" || !mountedFrom(pod, c, got, func(v corev1.Volume) bool {
					return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
				}) {
					t.Errorf("%s: %s=%q is not the ConfigMap %s", name, conf.EnvConfigFile, got, cm.Name)
				}

				// Probes on the service's endpoints and port.
				if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port {
					t.Errorf("%s: ports %v, the service listens on %s", name, c.Ports, cfg.HTTP.Listen)
				}
				for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/livez", c.ReadinessProbe: "/readyz", c.StartupProbe: "/livez"} {
					if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != c.Ports[0].Name {
						t.Errorf("%s: a probe is %+v, want GET %s on port %s", name, probe, want, c.Ports[0].Name)
					}
				}

				// The chart's drainTimeout is the service's, and the pod has
				// longer to stop than the service takes.
				if cfg.Stages.DrainTimeout != drain {
					t.Errorf("%s: stages.drain_timeout %s, the chart's drainTimeout %s", name, cfg.Stages.DrainTimeout, drain)
				}
				stop := pipeline.StopTimeout(cfg.Stages) + httpserver.DefaultShutdownTimeout
				if g := pod.TerminationGracePeriodSeconds; g == nil || *g != tt.grace || time.Duration(*g)*time.Second <= stop {
					t.Errorf("%s: terminationGracePeriodSeconds %v, want %d, above the service's %s", name, g, tt.grace, stop)
				}

				// Locked down.
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
					pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
					t.Errorf("%s: not read-only and non-root", name)
				}

				// Its own ServiceAccount.
				if _, ok := r.serviceAccounts[pod.ServiceAccountName]; !ok || pod.ServiceAccountName != name {
					t.Errorf("%s: service account %q is not its own", name, pod.ServiceAccountName)
				}

				needs := map[conf.Dependency]bool{}
				var queues []string
				for _, st := range stages {
					io, _ := topo.Stage(st)
					queues = append(queues, io.Queues...)
					for _, n := range io.Needs {
						needs[n] = true
					}
				}

				// Memory: the transfers' buffers, within s3.memory_budget, and more.
				mem := c.Resources.Requests.Memory().Value()
				if needs[conf.NeedS3Read] && slices.Contains(stages, conf.StageTransfer) && mem <= int64(cfg.S3.MemoryBudget) {
					t.Errorf("%s: requests %d bytes, not above s3.memory_budget %d", name, mem, cfg.S3.MemoryBudget)
				}
				if lim := c.Resources.Limits.Memory().Value(); lim < mem {
					t.Errorf("%s: memory limit %d below the request %d", name, lim, mem)
				}

				// The instance secret only where the stages need it, where the service reads it.
				mounted := mountedFrom(pod, c, cfg.Instances.File, func(v corev1.Volume) bool { return v.Secret != nil })
				if mounted != needs[conf.NeedInstances] {
					t.Errorf("%s: instance secret mounted at %s: %v, stages %v need it: %v", name, cfg.Instances.File, mounted,
						stages, needs[conf.NeedInstances])
				}

				// Scaled on exactly its stages' queues.
				so, scaled := r.scaledObjects[name]
				if len(queues) == 0 || d.Spec.Replicas != nil {
					if scaled {
						t.Errorf("%s: scaled by KEDA, but has replicas set or no queue", name)
					}
					continue
				}
				if !scaled {
					t.Errorf("%s: reads %v but has no ScaledObject", name, queues)
					continue
				}
				spec := so["spec"].(map[string]any)
				if spec["scaleTargetRef"].(map[string]any)["name"] != name {
					t.Errorf("%s: ScaledObject targets %v", name, spec["scaleTargetRef"])
				}
				var triggerQueues []string
				for _, tr := range spec["triggers"].([]any) {
					trig := tr.(map[string]any)
					md := trig["metadata"].(map[string]any)
					url, _ := md["queueURL"].(string)
					if trig["type"] != "aws-sqs-queue" || md["awsRegion"] != cfg.AWS.Region {
						t.Errorf("%s: trigger %v", name, trig)
					}
					if cfg.AWS.AccountID != "" && !strings.HasPrefix(url, "https://sqs."+cfg.AWS.Region+".amazonaws.com/"+cfg.AWS.AccountID+"/") {
						t.Errorf("%s: queue URL %s is not of account %s", name, url, cfg.AWS.AccountID)
					}
					triggerQueues = append(triggerQueues, url[strings.LastIndex(url, "/")+1:])
				}
				if !slices.Equal(triggerQueues, queues) {
					t.Errorf("%s: scaled on queues %v, its stages read %v", name, triggerQueues, queues)
				}
			}
			for _, st := range conf.StageNames() {
				if stageRuns[st] != 1 {
					t.Errorf("stage %s runs in %d Deployments, want 1", st, stageRuns[st])
				}
			}
			if len(r.pdbs) != len(r.deployments) {
				t.Errorf("%d PodDisruptionBudgets for %d Deployments", len(r.pdbs), len(r.deployments))
			}
		})
	}
}

// TestChart_full_values_options: the optional objects appear when asked
// for, and the IRSA annotations reach the ServiceAccounts.
func TestChart_full_values_options(t *testing.T) {
	def := render(t)
	if len(def.serviceMonitors)+len(def.networkPolicies)+len(def.services) != 0 || len(def.secrets) != 1 {
		t.Errorf("defaults render %d ServiceMonitors, %d NetworkPolicies, %d Services, %d Secrets; want 0, 0, 0, 1",
			len(def.serviceMonitors), len(def.networkPolicies), len(def.services), len(def.secrets))
	}
	full := render(t, fullValues)
	if len(full.serviceMonitors) != 1 || len(full.networkPolicies) != 1 || len(full.services) != len(full.deployments) {
		t.Errorf("full values render %d ServiceMonitors, %d NetworkPolicies, %d Services for %d Deployments",
			len(full.serviceMonitors), len(full.networkPolicies), len(full.services), len(full.deployments))
	}
	if len(full.secrets) != 0 {
		t.Errorf("with instances.existingSecret the chart creates %d Secrets", len(full.secrets))
	}
	for _, np := range full.networkPolicies {
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) {
			t.Errorf("NetworkPolicy %s: policy types %v, want Egress only", np.Name, np.Spec.PolicyTypes)
		}
	}
	for name, sa := range full.serviceAccounts {
		if !strings.HasPrefix(sa.Annotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::") {
			t.Errorf("ServiceAccount %s: annotations %v, want the IRSA role", name, sa.Annotations)
		}
	}
}

// drainTimeout returns the chart's drainTimeout with the values files
// applied over values.yaml.
func drainTimeout(t *testing.T, values ...string) time.Duration {
	t.Helper()
	d := time.Duration(0)
	for _, f := range append([]string{chartDir + "/values.yaml"}, values...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			DrainTimeout string `json:"drainTimeout"`
		}
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.DrainTimeout == "" {
			continue
		}
		if d, err = time.ParseDuration(v.DrainTimeout); err != nil {
			t.Fatalf("%s: drainTimeout: %v", f, err)
		}
	}
	if d <= 0 {
		t.Fatal("the chart has no drainTimeout")
	}
	return d
}

// imageEnv returns the variables the image sets (the Dockerfile's ENV
// lines).
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Dockerfile: ENV %q is not KEY=VALUE", kv)
			}
			env[k] = v
		}
	}
	if env[conf.EnvConfigFile] == "" {
		t.Fatalf("Dockerfile sets no %s: %v", conf.EnvConfigFile, env)
	}
	return env
}

// envValue returns the value of the container's variable name.
func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// mountedFrom reports whether path is in a directory the container mounts
// from a volume that match accepts.
func mountedFrom(pod corev1.PodSpec, c corev1.Container, path string, match func(corev1.Volume) bool) bool {
	for _, m := range c.VolumeMounts {
		if filepath.Dir(path) != filepath.Clean(m.MountPath) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && match(v) {
				return true
			}
		}
	}
	return false
}
