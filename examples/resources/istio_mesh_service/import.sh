# A Service is imported by <namespace>/<name>.
terraform import istio_mesh_service.product default/product
