# A WorkloadGroup is imported by <namespace>/<name>.
terraform import istio_workload_group.product default/product-vm
