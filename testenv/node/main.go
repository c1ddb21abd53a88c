// Command nodewright-node is a Kubernetes node for tests: kubelet, kube-controller-manager and
// kube-scheduler linked into one binary from the same k8s.io/kubernetes module (and replace block) as
// the test API server, so that one link step builds all three. The first argument names the
// component; the rest are its usual flags:
//
//	nodewright-node kubelet --config=...
//	nodewright-node kube-controller-manager --kubeconfig=...
//	nodewright-node kube-scheduler --kubeconfig=...
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // kube-controller-manager: CronJob time zones, as its own main imports it

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as each component's main registers it
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nodewright-node kubelet|kube-controller-manager|kube-scheduler [flags]")
		os.Exit(2)
	}
	var command *cobra.Command
	switch os.Args[1] {
	case "kubelet":
		command = kubelet.NewKubeletCommand(context.Background())
	case "kube-controller-manager":
		command = kcm.NewControllerManagerCommand()
	case "kube-scheduler":
		command = scheduler.NewSchedulerCommand()
	default:
		fmt.Fprintf(os.Stderr, "nodewright-node: unknown component %q (kubelet, kube-controller-manager or kube-scheduler)\n", os.Args[1])
		os.Exit(2)
	}
	command.SetArgs(os.Args[2:])
	os.Exit(cli.Run(command))
}
