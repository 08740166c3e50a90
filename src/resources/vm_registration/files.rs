//! The five bootstrap files in `output_dir`: written atomically, compared at plan, removed on
//! destroy.

use std::path::{Path, PathBuf};

use crate::istio::Bundle;
use crate::tfplug::Value;

/// Writes each file to a temporary name in the same directory and renames it, so a reader
/// never sees half a file; the token is readable by its owner only.
pub(super) fn write_bundle_files(dir: &Path, bundle: &Bundle) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for (name, content) in bundle.files() {
        let mode = if name == "istio-token" { 0o600 } else { 0o644 };
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        temporary.write_all(content.as_bytes())?;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
        temporary.persist(dir.join(name)).map_err(|e| e.error)?;
    }
    Ok(())
}

pub(super) fn remove_bundle_files(dir: &Path) -> std::io::Result<()> {
    for name in Bundle::FILE_NAMES {
        let path: PathBuf = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

/// Files in `output_dir` that no longer match the bundle in state (deleted, edited, or the
/// bundle was refreshed): the next apply rewrites them.
pub(super) fn files_outdated(planned: &Value) -> bool {
    let Some(dir) = planned.get_attr("output_dir").and_then(Value::as_str) else {
        return false;
    };
    let files = [
        ("cluster.env", "cluster_env"),
        ("mesh.yaml", "mesh_config"),
        ("hosts", "hosts"),
        ("root-cert.pem", "root_cert"),
        ("istio-token", "istio_token"),
    ];
    files.iter().any(|(file, attribute)| {
        match planned.get_attr(attribute).and_then(Value::as_str) {
            Some(expected) => std::fs::read_to_string(Path::new(dir).join(file))
                .map_or(true, |actual| actual != expected),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::vm_registration::tests::config;

    #[test]
    fn outdated_files_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let planned = config(serde_json::json!({
            "workload_group": "default/g",
            "output_dir": dir.path().to_string_lossy(),
            "cluster_env": "A=1\n", "mesh_config": "m", "hosts": "", "root_cert": "pem", "istio_token": "t",
        }));
        assert!(files_outdated(&planned), "missing files are outdated");
        for (file, content) in [
            ("cluster.env", "A=1\n"),
            ("mesh.yaml", "m"),
            ("hosts", ""),
            ("root-cert.pem", "pem"),
            ("istio-token", "t"),
        ] {
            std::fs::write(dir.path().join(file), content).unwrap();
        }
        assert!(!files_outdated(&planned));
        std::fs::write(dir.path().join("mesh.yaml"), "edited").unwrap();
        assert!(files_outdated(&planned));
    }

    #[test]
    fn files_are_written_atomically_with_private_token_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle {
            cluster_env: "A=1\n".into(),
            mesh_config: "defaultConfig: {}\n".into(),
            hosts: "10.0.0.1 istiod.istio-system.svc\n".into(),
            root_cert: "pem".into(),
            istio_token: "secret-token".into(),
            sha256: "x".into(),
        };
        write_bundle_files(dir.path(), &bundle).unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("istio-token"), 0o600);
        assert_eq!(mode("cluster.env"), 0o644);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("istio-token")).unwrap(),
            "secret-token"
        );
        remove_bundle_files(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
