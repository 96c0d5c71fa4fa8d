// Package deploy holds what operators deploy besides the chart's templates
// and the checks of all of it (deploy/): the Grafana dashboard, written from
// Dashboard; the Helm chart rendered with helm and decoded strictly into the
// Kubernetes API's types, its KEDA ScaledObjects validated against KEDA's
// CRD schema and compared with the service's own topology; the Prometheus
// rules checked and unit-tested with promtool. The tools come from
// .ci/deploy-tools and Debian's package prometheus; `make deploy-check`
// runs these checks alone.
package deploy
