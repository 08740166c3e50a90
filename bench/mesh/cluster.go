package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// serviceAccount is template.service_account of the benchmark's WorkloadGroup.
const serviceAccount = "bench"

func restConfig(kubeconfig string) (*rest.Config, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	// Its own user agent keeps the helper's requests out of the providers' counts.
	config.UserAgent = "meshbench"
	config.QPS, config.Burst = 500, 1000
	return config, nil
}

// prepare makes the namespace a workload runs in: the ServiceAccount its tokens
// are for, and istiod's root certificate ConfigMap, which both configurations read.
func prepare(kubeconfig, namespace string) error {
	config, err := restConfig(kubeconfig)
	if err != nil {
		return err
	}
	c := kubernetes.NewForConfigOrDie(config)
	ctx := context.Background()
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = c.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return poll(time.Minute, "ConfigMap "+namespace+"/istio-ca-root-cert (published by istiod)", func() error {
		_, err := c.CoreV1().ConfigMaps(namespace).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		return err
	})
}

// drop deletes a namespace with everything in it (after a run stopped at the
// time cap) and waits until it is gone.
func drop(kubeconfig, namespace string) error {
	config, err := restConfig(kubeconfig)
	if err != nil {
		return err
	}
	c := kubernetes.NewForConfigOrDie(config)
	ctx := context.Background()
	if err := c.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return poll(10*time.Minute, "namespace "+namespace+" to be deleted", func() error {
		_, err := c.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("still there")
		}
		return err
	})
}

func poll(timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s: %w", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
