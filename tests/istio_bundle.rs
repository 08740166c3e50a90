//! Rules of the VM bundle that need no cluster, key by key. Expected values are written out by
//! hand from Istio's sources at the pinned version (`istioctl/pkg/workload/workload.go`,
//! `tools/packaging/common/istio-start.sh`), never produced by running this code. The bundle as a
//! whole is judged by istioctl itself on the same cluster: the acceptance tests compare every
//! variant with `istioctl x workload entry configure` (`acceptance-tests/oracle_istioctl_test.go`),
//! which replaced the copies of istioctl's golden files this file used to hold.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};
use terraform_provider_istio::istio::crd::{
    ExecHealthCheck, HttpHeader, HttpHealthCheck, ReadinessProbe, WorkloadEntrySpec,
    WorkloadGroupObjectMeta, WorkloadGroupSpec,
};
use terraform_provider_istio::istio::{
    Bundle, BundleInputs, IstioError, IstiodReach, RegistrationMode, WorkloadIp, render_bundle,
    workload_entry_name,
};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A plain group in `shop`, auto mode, unrevisioned, Helm-like mesh config.
fn base() -> BundleInputs {
    BundleInputs {
        group_name: "product-vm".into(),
        group_namespace: "shop".into(),
        group_annotations: BTreeMap::new(),
        group_spec: WorkloadGroupSpec {
            metadata: Some(WorkloadGroupObjectMeta {
                labels: map(&[("app", "product"), ("version", "v2")]),
                annotations: BTreeMap::new(),
            }),
            template: WorkloadEntrySpec {
                ports: BTreeMap::from([("http".into(), 8080), ("grpc".into(), 9090), ("admin".into(), 80)]),
                service_account: "product".into(),
                network: "net-template".into(),
                ..Default::default()
            },
            probe: Some(ReadinessProbe {
                http_get: Some(HttpHealthCheck { port: 8080, ..Default::default() }),
                ..Default::default()
            }),
        },
        istio_namespace: "istio-system".into(),
        revision: String::new(),
        cluster_id: "cluster-east".into(),
        mesh_config_yaml: "trustDomain: cluster.local\ndefaultConfig:\n  meshId: mesh1\n  proxyMetadata:\n    FROM_MESH: \"x\"\n".into(),
        root_cert: "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n".into(),
        token: "token-1".into(),
        istiod: IstiodReach::HostsEntry(ip("192.0.2.10")),
        workload_ip: None,
        capture_dns: true,
        mode: RegistrationMode::Auto,
        network: None,
        locality: None,
        extra_labels: BTreeMap::new(),
    }
}

/// `KEY=value` lines of cluster.env, unquoted the way `sh` would (istioctl single-quotes).
fn env(bundle: &Bundle) -> BTreeMap<String, String> {
    assert!(
        bundle.cluster_env.ends_with('\n'),
        "cluster.env ends with a newline"
    );
    bundle
        .cluster_env
        .lines()
        .map(|line| {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {line}"));
            let v = match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(inner) => inner.replace(r#"'"'"'"#, "'"),
                None => v.to_string(),
            };
            (k.to_string(), v)
        })
        .collect()
}

fn default_config(bundle: &Bundle) -> Value {
    let mesh: Value = serde_yaml_ng::from_str(&bundle.mesh_config).expect("mesh.yaml is YAML");
    let keys: Vec<&String> = mesh.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["defaultConfig"],
        "mesh.yaml holds only defaultConfig (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 6)"
    );
    mesh["defaultConfig"].clone()
}

fn proxy_metadata(bundle: &Bundle) -> BTreeMap<String, String> {
    serde_json::from_value(default_config(bundle)["proxyMetadata"].clone()).unwrap()
}

/// `istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 5 and `istioctl/pkg/workload/workload.go` (`createClusterEnv`), every key, for an auto-registering, unrevisioned VM.
#[test]
fn auto_mode_sets_every_istioctl_key() {
    let bundle = render_bundle(&base()).unwrap();
    let md = proxy_metadata(&bundle);
    let labels_json = r#"{"app":"product","service.istio.io/canonical-name":"product","service.istio.io/canonical-revision":"v2","version":"v2"}"#;
    let pod_ports = r#"[{"name":"admin","containerPort":80,"protocol":""},{"name":"grpc","containerPort":9090,"protocol":""},{"name":"http","containerPort":8080,"protocol":""}]"#;
    let expected_md = map(&[
        ("FROM_MESH", "x"),               // carried over from the mesh ConfigMap
        ("CANONICAL_SERVICE", "product"), // from label `app`
        ("CANONICAL_REVISION", "v2"),     // from label `version`
        ("POD_NAMESPACE", "shop"),
        ("SERVICE_ACCOUNT", "product"),
        ("TRUST_DOMAIN", "cluster.local"),
        ("ISTIO_META_CLUSTER_ID", "cluster-east"),
        ("ISTIO_META_MESH_ID", "mesh1"),
        ("ISTIO_META_NETWORK", "net-template"),
        ("ISTIO_META_POD_PORTS", pod_ports),
        ("ISTIO_META_WORKLOAD_NAME", "product-vm"),
        ("ISTIO_METAJSON_LABELS", labels_json),
        ("ISTIO_META_DNS_CAPTURE", "true"),
        ("ISTIO_META_AUTO_REGISTER_GROUP", "product-vm"),
    ]);
    assert_eq!(md, expected_md);

    let mut expected_env = expected_md.clone();
    expected_env.extend(map(&[
        ("ISTIO_INBOUND_PORTS", "80,8080,9090"), // sorted; istioctl's order is Go map order
        ("ISTIO_NAMESPACE", "shop"),
        ("ISTIO_SERVICE", "product-vm.shop"),
        ("ISTIO_SERVICE_CIDR", "*"),
        ("ISTIO_LOCAL_EXCLUDE_PORTS", "22,15090,15021,15020"),
        ("SERVICE_ACCOUNT", "product"),
    ]));
    assert_eq!(
        env(&bundle),
        expected_env,
        "no CA_ADDR, ISTIO_SVC_IP or rewrite flag here"
    );

    let dc = default_config(&bundle);
    assert_eq!(
        dc["meshId"], "mesh1",
        "the mesh defaultConfig is carried over"
    );
    assert!(
        dc.get("discoveryAddress").is_none(),
        "unrevisioned: istioctl leaves it unset"
    );
    assert_eq!(dc["readinessProbe"], json!({"httpGet": {"port": 8080}}));
    assert_eq!(bundle.hosts, "192.0.2.10 istiod.istio-system.svc\n");
    assert_eq!(bundle.root_cert, base().root_cert);
    assert_eq!(bundle.istio_token, "token-1");
}

#[test]
fn auto_mode_labels_carry_registration_labels_and_locality() {
    let inputs = BundleInputs {
        extra_labels: map(&[("terraform.istio.io/registration", "r-123")]),
        locality: Some("us-east1/us-east1-b".into()),
        ..base()
    };
    let md = proxy_metadata(&render_bundle(&inputs).unwrap());
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&md["ISTIO_METAJSON_LABELS"]).unwrap();
    assert_eq!(labels["terraform.istio.io/registration"], "r-123");
    assert_eq!(labels["istio-locality"], "us-east1/us-east1-b");
    assert_eq!(labels["service.istio.io/canonical-name"], "product");
    assert!(!md.contains_key("ISTIO_META_WORKLOAD_ENTRY"));
}

#[test]
fn template_labels_override_group_metadata_labels_in_the_bundle_as_istioctl_does() {
    let mut inputs = base();
    inputs.group_spec.template.labels = map(&[("app", "from-template")]);
    let md = proxy_metadata(&render_bundle(&inputs).unwrap());
    assert_eq!(md["CANONICAL_SERVICE"], "from-template");
    assert!(md["ISTIO_METAJSON_LABELS"].contains(r#""app":"from-template""#));
}

/// `pilot/pkg/autoregistration/controller.go` (`isHealthCheckedWorkloadEntry`): a manual entry is attached to by name; there is no auto-register key.
#[test]
fn manual_mode_names_the_entry_and_does_not_auto_register() {
    let inputs = BundleInputs {
        mode: RegistrationMode::Manual {
            entry_name: "product-vm-1".into(),
        },
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    let md = proxy_metadata(&bundle);
    assert_eq!(md["ISTIO_META_WORKLOAD_ENTRY"], "product-vm-1");
    assert!(!md.contains_key("ISTIO_META_AUTO_REGISTER_GROUP"));
    assert_eq!(env(&bundle)["ISTIO_META_WORKLOAD_ENTRY"], "product-vm-1");
}

/// `istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 2, `istioctl/pkg/workload/workload.go` (`createClusterEnv`) `CA_ADDR`, `istioctl/pkg/workload/workload.go` (`createHosts`) hosts name.
#[test]
fn revisioned_control_plane_uses_istiod_rev_names() {
    let inputs = BundleInputs {
        revision: "canary".into(),
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(
        env(&bundle)["CA_ADDR"],
        "istiod-canary.istio-system.svc:15012"
    );
    assert_eq!(
        default_config(&bundle)["discoveryAddress"],
        "istiod-canary.istio-system.svc:15012"
    );
    assert_eq!(bundle.hosts, "192.0.2.10 istiod-canary.istio-system.svc\n");

    // "default" is not a revision (`istioctl/pkg/workload/workload.go` (entry configure flags) isRevisioned).
    let bundle = render_bundle(&BundleInputs {
        revision: "default".into(),
        ..base()
    })
    .unwrap();
    assert!(!env(&bundle).contains_key("CA_ADDR"));
    assert_eq!(bundle.hosts, "192.0.2.10 istiod.istio-system.svc\n");
}

#[test]
fn revisioned_mesh_config_with_its_own_discovery_address_keeps_it() {
    let inputs = BundleInputs {
        revision: "canary".into(),
        mesh_config_yaml: "defaultConfig:\n  discoveryAddress: custom.example:15012\n".into(),
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(
        default_config(&bundle)["discoveryAddress"],
        "custom.example:15012"
    );
    assert_eq!(
        env(&bundle)["CA_ADDR"],
        "istiod-canary.istio-system.svc:15012"
    );
}

/// `istioctl/pkg/workload/workload.go` (`createHosts`) alternative and `samples/multicluster/` and the `--network`/`--externalIP` handling in `istioctl/pkg/workload/workload.go`: a gateway with a DNS name.
#[test]
fn dns_gateway_uses_discovery_address_and_istiod_san_instead_of_hosts() {
    let inputs = BundleInputs {
        revision: "canary".into(),
        istiod: IstiodReach::DiscoveryAddress {
            host: "eastwest.example.com".into(),
            port: 15012,
        },
        network: Some("vm-network".into()),
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    let dc = default_config(&bundle);
    assert_eq!(dc["discoveryAddress"], "eastwest.example.com:15012");
    let md = proxy_metadata(&bundle);
    assert_eq!(md["ISTIOD_SAN"], "istiod-canary.istio-system.svc");
    assert_eq!(
        md["ISTIO_META_NETWORK"], "vm-network",
        "registration network overrides the template's"
    );
    let env = env(&bundle);
    assert_eq!(env["ISTIOD_SAN"], "istiod-canary.istio-system.svc");
    assert_eq!(
        env["CA_ADDR"], "eastwest.example.com:15012",
        "istio-start.sh would otherwise point the CA at istiod.istio-system.svc:15012, which the VM cannot resolve"
    );
    assert_eq!(bundle.hosts, "", "no hosts line");
}

/// What `tools/packaging/common/istio-start.sh` of the pinned Istio does with cluster.env:
/// `ISTIO_SYSTEM_NAMESPACE` defaults to `istio-system`, and `CA_ADDR` to
/// `istiod.${ISTIO_SYSTEM_NAMESPACE}.svc:15012` whenever cluster.env has none. Written out by
/// hand from the script, so the test does not reuse the code under test.
fn start_script_ca_addr(env: &BTreeMap<String, String>) -> String {
    match env.get("CA_ADDR").filter(|v| !v.is_empty()) {
        Some(ca) => ca.clone(),
        None => {
            let ns = env
                .get("ISTIO_SYSTEM_NAMESPACE")
                .filter(|v| !v.is_empty())
                .map_or("istio-system", |v| v);
            format!("istiod.{ns}.svc:15012")
        }
    }
}

/// Issue "Field defects" item 2: the CA address the VM ends up with after istio-start.sh is
/// one it can reach (the hosts line's name, or the discovery address) in every variant.
#[test]
fn the_start_script_ends_up_with_a_reachable_ca_in_every_variant() {
    let gateway = IstiodReach::DiscoveryAddress {
        host: "gw.example.com".into(),
        port: 15443,
    };
    let cases = [
        ("default install", base(), "istiod.istio-system.svc:15012"),
        (
            "revision",
            BundleInputs {
                revision: "canary".into(),
                ..base()
            },
            "istiod-canary.istio-system.svc:15012",
        ),
        (
            "istio namespace",
            BundleInputs {
                istio_namespace: "mesh-cp".into(),
                ..base()
            },
            "istiod.mesh-cp.svc:15012",
        ),
        (
            "istio namespace and revision",
            BundleInputs {
                istio_namespace: "mesh-cp".into(),
                revision: "canary".into(),
                ..base()
            },
            "istiod-canary.mesh-cp.svc:15012",
        ),
        (
            "istiod_address / hostname gateway",
            BundleInputs {
                istiod: gateway.clone(),
                ..base()
            },
            "gw.example.com:15443",
        ),
        (
            "hostname gateway, revision and namespace",
            BundleInputs {
                istiod: gateway,
                revision: "canary".into(),
                istio_namespace: "mesh-cp".into(),
                ..base()
            },
            "gw.example.com:15443",
        ),
    ];
    for (case, inputs, want) in cases {
        let bundle = render_bundle(&inputs).unwrap();
        let env = env(&bundle);
        assert_eq!(start_script_ca_addr(&env), want, "{case}");
        if let IstiodReach::HostsEntry(_) = inputs.istiod {
            let host = want.trim_end_matches(":15012");
            assert!(
                bundle.hosts.ends_with(&format!(" {host}\n")),
                "{case}: the hosts file resolves the CA host"
            );
        }
        if inputs.istio_namespace != "istio-system" {
            assert_eq!(
                env["ISTIO_SYSTEM_NAMESPACE"], inputs.istio_namespace,
                "{case}"
            );
        } else {
            assert!(
                !env.contains_key("ISTIO_SYSTEM_NAMESPACE"),
                "{case}: istioctl's file where the default is right"
            );
        }
    }
    // Where the script's default is right, the file stays as istioctl writes it.
    assert!(!env(&render_bundle(&base()).unwrap()).contains_key("CA_ADDR"));
}

#[test]
fn discovery_address_brackets_ipv6() {
    let inputs = BundleInputs {
        istiod: IstiodReach::DiscoveryAddress {
            host: "2001:db8::5".into(),
            port: 443,
        },
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(
        default_config(&bundle)["discoveryAddress"],
        "[2001:db8::5]:443"
    );
    assert_eq!(
        proxy_metadata(&bundle)["ISTIOD_SAN"],
        "istiod.istio-system.svc"
    );
}

/// `istioctl/pkg/workload/workload.go` (`createClusterEnv`) `--internalIP` / `--externalIP`.
#[test]
fn internal_and_external_ip() {
    let internal = render_bundle(&BundleInputs {
        workload_ip: Some(WorkloadIp::Internal(ip("10.1.2.3"))),
        ..base()
    })
    .unwrap();
    let env_internal = env(&internal);
    assert_eq!(env_internal["ISTIO_SVC_IP"], "10.1.2.3");
    assert!(!env_internal.contains_key("REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION"));

    let external = render_bundle(&BundleInputs {
        workload_ip: Some(WorkloadIp::External(ip("203.0.113.9"))),
        ..base()
    })
    .unwrap();
    let env_external = env(&external);
    assert_eq!(env_external["ISTIO_SVC_IP"], "203.0.113.9");
    assert_eq!(
        env_external["REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION"],
        "true"
    );
    // Neither is proxy metadata: mesh.yaml does not carry them.
    assert!(!proxy_metadata(&external).contains_key("ISTIO_SVC_IP"));
}

/// `istioctl/pkg/workload/workload.go` (entry configure flags) `--capture-dns`, `pkg/dns/client` (DNS proxy).
#[test]
fn capture_dns_false_omits_the_key_but_keeps_a_mesh_config_value() {
    let bundle = render_bundle(&BundleInputs {
        capture_dns: false,
        ..base()
    })
    .unwrap();
    assert!(!proxy_metadata(&bundle).contains_key("ISTIO_META_DNS_CAPTURE"));
    assert!(!env(&bundle).contains_key("ISTIO_META_DNS_CAPTURE"));

    // istioctl only ever *sets* the key; a value from the mesh ConfigMap survives.
    let inputs = BundleInputs {
        capture_dns: false,
        mesh_config_yaml:
            "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"false\"\n".into(),
        ..base()
    };
    assert_eq!(
        proxy_metadata(&render_bundle(&inputs).unwrap())["ISTIO_META_DNS_CAPTURE"],
        "false"
    );
}

#[test]
fn custom_status_port_is_excluded_from_capture() {
    let inputs = BundleInputs {
        mesh_config_yaml: "defaultConfig:\n  statusPort: 16021\n".into(),
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(
        env(&bundle)["ISTIO_LOCAL_EXCLUDE_PORTS"],
        "22,15090,15021,16021"
    );
    let inputs = BundleInputs {
        mesh_config_yaml: "defaultConfig:\n  statusPort: 15021\n".into(),
        ..base()
    };
    assert_eq!(
        env(&render_bundle(&inputs).unwrap())["ISTIO_LOCAL_EXCLUDE_PORTS"],
        "22,15090,15021"
    );
}

#[test]
fn empty_service_account_falls_back_to_default() {
    let mut inputs = base();
    inputs.group_spec.template.service_account = String::new();
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(env(&bundle)["SERVICE_ACCOUNT"], "default");
    assert_eq!(proxy_metadata(&bundle)["SERVICE_ACCOUNT"], "default");
}

/// `istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 3: object annotation first, then spec.metadata; proxyMetadata merges, other
/// top-level fields replace.
#[test]
fn proxy_config_annotations_apply_in_istioctl_order() {
    let mut inputs = base();
    inputs.mesh_config_yaml =
        "defaultConfig:\n  concurrency: 2\n  proxyMetadata:\n    A: mesh\n    B: mesh\n    C: mesh\n".into();
    inputs.group_annotations = map(&[(
        "proxy.istio.io/config",
        "concurrency: 4\nproxyMetadata:\n  B: object\n  C: object\n",
    )]);
    inputs.group_spec.metadata.as_mut().unwrap().annotations =
        map(&[("proxy.istio.io/config", "proxyMetadata:\n  C: spec\n")]);
    let bundle = render_bundle(&inputs).unwrap();
    let md = proxy_metadata(&bundle);
    assert_eq!(
        (md["A"].as_str(), md["B"].as_str(), md["C"].as_str()),
        ("mesh", "object", "spec")
    );
    assert_eq!(default_config(&bundle)["concurrency"], 4);
}

#[test]
fn snake_case_mesh_config_fields_are_read_like_proto_json() {
    let inputs = BundleInputs {
        mesh_config_yaml: "trust_domain: td.example\ndefault_config:\n  mesh_id: m9\n  proxy_metadata:\n    X: y\n".into(),
        ..base()
    };
    let bundle = render_bundle(&inputs).unwrap();
    let md = proxy_metadata(&bundle);
    assert_eq!(md["TRUST_DOMAIN"], "td.example");
    assert_eq!(md["ISTIO_META_MESH_ID"], "m9");
    assert_eq!(md["X"], "y");
    assert!(default_config(&bundle).get("mesh_id").is_none());
}

/// `istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 4: the group's probe replaces whatever the mesh config had, even with nothing.
#[test]
fn readiness_probe_comes_only_from_the_group() {
    let mesh = "defaultConfig:\n  readinessProbe:\n    tcpSocket:\n      port: 1\n".to_string();
    let mut inputs = BundleInputs {
        mesh_config_yaml: mesh,
        ..base()
    };
    inputs.group_spec.probe = None;
    let bundle = render_bundle(&inputs).unwrap();
    assert!(default_config(&bundle).get("readinessProbe").is_none());

    inputs.group_spec.probe = Some(ReadinessProbe {
        initial_delay_seconds: Some(0), // proto3 zero: not printed
        period_seconds: Some(5),
        failure_threshold: Some(3),
        exec: Some(ExecHealthCheck {
            command: vec!["/bin/check".into(), "-q".into()],
        }),
        ..Default::default()
    });
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(
        default_config(&bundle)["readinessProbe"],
        json!({"periodSeconds": 5, "failureThreshold": 3, "exec": {"command": ["/bin/check", "-q"]}})
    );
    assert!(
        bundle
            .mesh_config
            .contains("    exec:\n      command:\n      - /bin/check\n      - -q\n")
    );

    inputs.group_spec.probe = Some(ReadinessProbe {
        http_get: Some(HttpHealthCheck {
            path: "/ready".into(),
            port: 8080,
            scheme: "HTTPS".into(),
            http_headers: vec![HttpHeader {
                name: "X-Probe".into(),
                value: "1".into(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    });
    let bundle = render_bundle(&inputs).unwrap();
    assert_eq!(
        default_config(&bundle)["readinessProbe"],
        json!({"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTPS",
                           "httpHeaders": [{"name": "X-Probe", "value": "1"}]}})
    );
}

#[test]
fn rendering_is_deterministic_and_the_digest_tracks_every_file() {
    let a = render_bundle(&base()).unwrap();
    let b = render_bundle(&base()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.sha256.len(), 64);
    assert!(
        a.sha256
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let new_token = render_bundle(&BundleInputs {
        token: "token-2".into(),
        ..base()
    })
    .unwrap();
    assert_ne!(
        new_token.sha256, a.sha256,
        "a re-issued token must change the digest"
    );
    assert_eq!(new_token.cluster_env, a.cluster_env);

    let new_cert = render_bundle(&BundleInputs {
        root_cert: "other".into(),
        ..base()
    })
    .unwrap();
    assert_ne!(new_cert.sha256, a.sha256);
    let new_gateway = render_bundle(&BundleInputs {
        istiod: IstiodReach::HostsEntry(ip("192.0.2.11")),
        ..base()
    })
    .unwrap();
    assert_ne!(new_gateway.sha256, a.sha256);

    // Moving bytes from one file to the next must not collide.
    let x = render_bundle(&BundleInputs {
        token: "ab".into(),
        root_cert: "c".into(),
        ..base()
    })
    .unwrap();
    let y = render_bundle(&BundleInputs {
        token: "a".into(),
        root_cert: "bc".into(),
        ..base()
    })
    .unwrap();
    assert_ne!(x.sha256, y.sha256);
}

#[test]
fn files_are_named_as_istioctl_names_them() {
    let bundle = render_bundle(&base()).unwrap();
    let names: Vec<&str> = bundle.files().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "cluster.env",
            "hosts",
            "istio-token",
            "mesh.yaml",
            "root-cert.pem"
        ]
    );
    assert_eq!(bundle.files()[2].1, "token-1");
    assert!(
        !format!("{bundle:?}").contains("token-1"),
        "Debug must not print the token"
    );
}

#[test]
fn bad_mesh_yaml_names_the_configmap_and_key() {
    let inputs = BundleInputs {
        revision: "canary".into(),
        mesh_config_yaml: "defaultConfig: [unclosed".into(),
        ..base()
    };
    let err = render_bundle(&inputs).unwrap_err();
    assert!(matches!(err, IstioError::MeshConfig { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("istio-system/istio-canary") && msg.contains("\"mesh\""),
        "{msg}"
    );

    let inputs = BundleInputs {
        mesh_config_yaml: "defaultConfig:\n  proxyMetadata:\n    FLAG: true\n".into(),
        ..base()
    };
    let msg = render_bundle(&inputs).unwrap_err().to_string();
    assert!(
        msg.contains("istio-system/istio") && msg.contains("proxyMetadata.FLAG"),
        "{msg}"
    );

    let inputs = BundleInputs {
        mesh_config_yaml: "- a list".into(),
        ..base()
    };
    assert!(render_bundle(&inputs).is_err());
    // An empty ConfigMap value is an empty mesh config, as for istioctl.
    let inputs = BundleInputs {
        mesh_config_yaml: String::new(),
        ..base()
    };
    assert_eq!(
        proxy_metadata(&render_bundle(&inputs).unwrap())["TRUST_DOMAIN"],
        ""
    );
}

#[test]
fn bad_proxy_config_annotation_names_the_group_and_location() {
    let mut inputs = base();
    inputs.group_spec.metadata.as_mut().unwrap().annotations =
        map(&[("proxy.istio.io/config", "[not: a map")]);
    let msg = render_bundle(&inputs).unwrap_err().to_string();
    assert!(
        msg.contains("shop/product-vm") && msg.contains("spec.metadata.annotations"),
        "{msg}"
    );
}

#[test]
fn inputs_that_cannot_work_are_rejected() {
    let inputs = BundleInputs {
        mode: RegistrationMode::Manual {
            entry_name: String::new(),
        },
        ..base()
    };
    assert!(matches!(
        render_bundle(&inputs),
        Err(IstioError::InvalidInput { field: "mode", .. })
    ));
    let inputs = BundleInputs {
        istiod: IstiodReach::DiscoveryAddress {
            host: String::new(),
            port: 15012,
        },
        ..base()
    };
    assert!(matches!(
        render_bundle(&inputs),
        Err(IstioError::InvalidInput {
            field: "istiod",
            ..
        })
    ));
}

/// `pilot/pkg/autoregistration/controller.go` (`autoregisteredWorkloadEntryName`): the bundle's network is the one istiod appends to the auto-registered entry's name.
#[test]
fn auto_registered_entry_name_matches_the_bundles_network() {
    let inputs = BundleInputs {
        network: Some("vm-net".into()),
        ..base()
    };
    let md = proxy_metadata(&render_bundle(&inputs).unwrap());
    let name = workload_entry_name(
        &md["ISTIO_META_AUTO_REGISTER_GROUP"],
        "10.0.0.7",
        Some(&md["ISTIO_META_NETWORK"]),
    );
    assert_eq!(name, "product-vm-10.0.0.7-vm-net");
}

/// Issue "Field defects" item 9: istiod only auto-registers proxies that authenticate, which a
/// plaintext (15010) discovery connection never does.
#[test]
fn auto_registration_over_plaintext_xds_is_refused() {
    let plaintext = "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15010\n";
    let inputs = BundleInputs {
        mesh_config_yaml: plaintext.into(),
        ..base()
    };
    let error = render_bundle(&inputs).unwrap_err().to_string();
    assert!(
        error.contains("15010") && error.contains("auto-regist"),
        "{error}"
    );
    let manual = BundleInputs {
        mode: RegistrationMode::Manual {
            entry_name: "product-vm-1".into(),
        },
        ..inputs
    };
    assert!(
        render_bundle(&manual).is_ok(),
        "a manual entry does not need auto-registration"
    );
}
