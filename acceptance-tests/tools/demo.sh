#!/usr/bin/env bash
# `make demo`: start the local control plane, `terraform init/apply`
# examples/quickstart against it, show what was created, then stop the control
# plane (KEEP=1 keeps it running and prints how to use it).
#
# Expects (set by the Makefile): TFPI_CACHE, RUN_DIR, CONTROLPLANE (CLI
# binary), TERRAFORM, TF_CLI_CONFIG_FILE, KEEP.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${RUN_DIR:?}" "${CONTROLPLANE:?}" "${TERRAFORM:?}" "${TF_CLI_CONFIG_FILE:?}"
export TF_CLI_CONFIG_FILE TF_IN_AUTOMATION=1
KEEP="${KEEP:-0}"

say() { printf '\n==> %s\n' "$*"; }

if "$CONTROLPLANE" status --run-dir "$RUN_DIR" >/dev/null 2>&1; then
	say "Stopping the control plane left running in $RUN_DIR by an earlier demo"
	"$CONTROLPLANE" stop --run-dir "$RUN_DIR"
fi

say "Starting the local control plane (etcd, kube-apiserver, kube-controller-manager, istiod) in $RUN_DIR"
"$CONTROLPLANE" start --run-dir "$RUN_DIR" >/dev/null
stop() { "$CONTROLPLANE" stop --run-dir "$RUN_DIR"; }
if [[ "$KEEP" != 1 ]]; then trap stop EXIT; fi
set -a; . "$RUN_DIR/env"; set +a

work="$RUN_DIR/quickstart"
rm -rf "$work"
cp -R "$repo/examples/quickstart" "$work"
rm -rf "$work/.terraform" "$work/.terraform.lock.hcl" "$work"/terraform.tfstate*
touch "$RUN_DIR/.demo-start"

# The simulated VM: a real pilot-agent that boots from the files the apply
# writes to ./bundle (as a new VM would from its user-data), with the
# application its probe checks.
vmsim="$TFPI_CACHE/bin/vmsim"
(cd "$repo/acceptance-tests" && go build -o "$vmsim" ./cmd/vmsim)
vm_ip=127.0.0.50
say "Booting a simulated VM ($vm_ip) that waits for its bundle in $work/bundle (log $RUN_DIR/vm.log)"
"$vmsim" run --bundle "$work/bundle" --work-dir "$RUN_DIR/vm" --ip "$vm_ip" --hostname vm-1 \
	--serve-app 8080 --wait-for-bundle 10m --timeout 5m >"$RUN_DIR/vm.log" 2>&1 &
vm_pid=$!
echo "$vm_pid" >"$RUN_DIR/vm.pid"
stop_vm() { kill "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null || true; }
if [[ "$KEEP" != 1 ]]; then trap 'stop_vm; stop' EXIT; else trap 'stop_vm; stop' ERR; fi
cd "$work"

say "terraform init (provider from the filesystem mirror, offline)"
"$TERRAFORM" init -input=false -no-color | grep -v '^$'
say "terraform apply"
"$TERRAFORM" apply -input=false -auto-approve -no-color -var "kubeconfig=$KUBECONFIG"

say "terraform apply -refresh-only (the VM's health as istiod reports it now)"
"$TERRAFORM" apply -input=false -refresh-only -auto-approve -no-color -var "kubeconfig=$KUBECONFIG" | grep -v '^$' | tail -3
say "The VM's registration"
"$TERRAFORM" state show -no-color istio_vm_registration.vm_1 | grep -E '^\s+(id|workload_group|mode|workload_entry_name|healthy|health_message|token_expires_at|bundle_sha256|output_dir) '
say "The simulated VM"
grep -E 'workload certificate|xds:|running' "$RUN_DIR/vm.log" || tail -5 "$RUN_DIR/vm.log"

say "What Terraform manages (terraform state list)"
"$TERRAFORM" state list -no-color
say "Outputs"
"$TERRAFORM" output -no-color

say "Istio objects in the cluster"
for kind in workloadgroups workloadentries serviceentries; do
	echo "--- $kind"
	"$CONTROLPLANE" get --run-dir "$RUN_DIR" -A "$kind"
done
echo "--- istio-system configmaps (published by the installation and istiod)"
"$CONTROLPLANE" get --run-dir "$RUN_DIR" -n istio-system configmaps

say "Files written by the apply (outside .terraform)"
find "$work" -type f -newer "$RUN_DIR/.demo-start" -not -path '*/.terraform/*' | sed "s|^$work/|  |" | sort

if [[ "$KEEP" == 1 ]]; then
	cat <<EOT

==> The control plane keeps running (KEEP=1). Use it:
  set -a; . $RUN_DIR/env; set +a          # KUBECONFIG, ISTIOD_XDS_ADDR, ... (also: make controlplane-env)
  cd $work && TF_CLI_CONFIG_FILE=$TF_CLI_CONFIG_FILE $TERRAFORM plan -var kubeconfig=\$KUBECONFIG
  $CONTROLPLANE get --run-dir $RUN_DIR -A workloadgroups
  logs: $RUN_DIR/*.log
The simulated VM keeps running too (pid $vm_pid, log $RUN_DIR/vm.log).
Stop both with: kill $vm_pid; make controlplane-stop
EOT
else
	say "Stopping the control plane (KEEP=1 keeps it running); logs stay in $RUN_DIR"
fi
