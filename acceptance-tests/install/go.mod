module terraform-provider-istio/acceptance-tests/install

go 1.26.0
