// Command goaws-local runs the goaws v0.4.5 SQS/SNS emulator on a loopback
// address only (the upstream binary always binds 0.0.0.0). It is a separate
// module so the service itself does not depend on goaws. Used by .ci/stack.
package main

import (
	"flag"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/conf"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/router"
	log "github.com/sirupsen/logrus"
)

func main() {
	cfg := flag.String("config", "", "goaws yaml file (required; queues and topics in it are pre-created)")
	listen := flag.String("listen", "127.0.0.1:4100", "loopback host:port to serve SQS and SNS on")
	env := flag.String("env", "Local", "section of the yaml file to use")
	debug := flag.Bool("debug", false, "debug logging")
	flag.Parse()
	if *debug {
		log.SetLevel(log.DebugLevel)
	}
	host, port, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("-listen %q: must be a loopback IP and port, e.g. 127.0.0.1:4100", *listen)
	}
	if *cfg == "" { // without a file goaws walks the whole working tree looking for goaws.yaml
		log.Fatal("-config is required")
	}
	conf.LoadYamlConfig(*cfg, *env) // pre-creates queues and topics; ignores its own errors
	if app.CurrentEnvironment.Region == "" {
		log.Fatalf("%s: section %q not loaded or has no Region", *cfg, *env)
	}
	// Queue URLs must name the address actually served, whatever Port the yaml says.
	app.SyncQueues.Lock()
	oldBase := "." + app.CurrentEnvironment.Host + ":" + app.CurrentEnvironment.Port + "/"
	app.CurrentEnvironment.Host, app.CurrentEnvironment.Port = host, port
	for _, q := range app.SyncQueues.Queues {
		q.URL = strings.Replace(q.URL, oldBase, "."+host+":"+port+"/", 1)
	}
	app.SyncQueues.Unlock()

	go gosqs.PeriodicTasks(time.Second, make(chan struct{})) // visibility timeouts, DLQ moves
	log.Warnf("goaws-local listening on %s (config %s)", *listen, *cfg)
	log.Fatal(http.ListenAndServe(*listen, guarded(router.New())))
}

// guarded holds the read lock of goaws's queue or topic table around the
// v0.4.5 handlers that read it without one (GetQueueUrl,
// ListSubscriptionsByTopic, ListTopics): a concurrent CreateQueue or
// CreateTopic otherwise kills goaws with "concurrent map read and map write".
// None of these handlers takes the lock itself.
func guarded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.FormValue("Action") {
		case "GetQueueUrl":
			app.SyncQueues.RLock()
			defer app.SyncQueues.RUnlock()
		case "ListSubscriptionsByTopic", "ListTopics":
			app.SyncTopics.RLock()
			defer app.SyncTopics.RUnlock()
		}
		next.ServeHTTP(w, r)
	})
}
