package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

var workloadEntries = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}

// health plays istiod's part for VMs that are not there: it writes the
// condition istiod writes when a VM's agent reports its probe passing
// (type Healthy, status True, lastProbeTime = lastTransitionTime = now; see
// pilot/pkg/autoregistration/internal/health/controller.go at the pinned Istio)
// through the status subresource, and records when. Without -hold it answers
// every new entry at once (a VM whose agent already runs); with -hold it waits
// until that many entries exist and their waits have started (-settle), then
// answers all of them in one burst: the instant each wait should end.
func health(kubeconfig, namespace, recordPath string, hold int, settle time.Duration) error {
	config, err := restConfig(kubeconfig)
	if err != nil {
		return err
	}
	client := dynamic.NewForConfigOrDie(config).Resource(workloadEntries).Namespace(namespace)
	record, err := os.Create(recordPath)
	if err != nil {
		return err
	}
	defer record.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	w := &healthWriter{client: client, record: record, marked: map[types.UID]bool{}}
	pending := make(chan *unstructured.Unstructured, 100000)
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dynamic.NewForConfigOrDie(config), 0, namespace, nil)
	informer := factory.ForResource(workloadEntries).Informer()
	enqueue := func(obj any) {
		if u, ok := obj.(*unstructured.Unstructured); ok && !isHealthy(u) {
			pending <- u
		}
	}
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())

	var held []*unstructured.Unstructured
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-pending:
			if hold == 0 {
				w.markHealthy(ctx, u)
				continue
			}
			held = append(held, u)
			if w.distinct(held) < hold {
				continue
			}
			time.Sleep(settle)
			for _, h := range held {
				w.markHealthy(ctx, h)
			}
			held, hold = nil, 0
		}
	}
}

type healthWriter struct {
	client dynamic.ResourceInterface
	record *os.File
	mu     sync.Mutex
	marked map[types.UID]bool
}

func (w *healthWriter) distinct(entries []*unstructured.Unstructured) int {
	seen := map[types.UID]bool{}
	for _, e := range entries {
		seen[e.GetUID()] = true
	}
	return len(seen)
}

// markHealthy writes Healthy=True once per entry (by UID) and records
// "name address sent_ns done_ns".
func (w *healthWriter) markHealthy(ctx context.Context, entry *unstructured.Unstructured) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.marked[entry.GetUID()] {
		return
	}
	w.marked[entry.GetUID()] = true
	now := metav1.Now().UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Healthy","status":"True","lastProbeTime":%q,"lastTransitionTime":%q}]}}`, now, now)
	sent := time.Now()
	_, err := w.client.Patch(ctx, entry.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	done := time.Now()
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshbench health: %s: %v\n", entry.GetName(), err)
		return
	}
	address, _, _ := unstructured.NestedString(entry.Object, "spec", "address")
	fmt.Fprintf(w.record, "%s\t%s\t%d\t%d\n", entry.GetName(), address, sent.UnixNano(), done.UnixNano())
}

func isHealthy(u *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == "Healthy" && m["status"] == "True" {
			return true
		}
	}
	return false
}
