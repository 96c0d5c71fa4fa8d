// Package deploy holds the checks of what operators deploy (deploy/): the
// Helm chart rendered with helm and decoded strictly into the Kubernetes
// API's types, its KEDA ScaledObjects validated against KEDA's CRD schema
// and compared with the service's own topology. The tools come from
// .ci/deploy-tools; `make deploy-check` runs these checks alone.
package deploy
