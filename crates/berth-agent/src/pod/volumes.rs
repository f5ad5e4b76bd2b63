//! A pod's files on the node: `<pod dir>/volumes/<volume>` for emptyDir, ConfigMap, Secret,
//! downward API and projected volumes, `<pod dir>/serviceaccount` with `token`, `ca.crt`
//! and `namespace`, and the node-local directories of PersistentVolumeClaims, which outlive
//! the pod ([`prepare_claims`]).
//!
//! Owns writing those files so that a change of the source reaches running containers: each
//! file is replaced by a rename of a complete temporary file (readers never see half a file),
//! unchanged files are left alone and files no longer wanted are removed. Must not decide what
//! the files hold (`spec::volume_files` does) nor fetch anything from the API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use crate::pod::spec::VolumeFile;

/// Errors writing a pod's files.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where one pod's files live.
#[derive(Clone, Debug)]
pub struct PodDirs {
    /// `<data dir>/pods/<uid>`.
    pub root: PathBuf,
}

impl PodDirs {
    /// The directories of the pod whose directory is `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Parent of the per-volume directories.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The service-account directory.
    pub fn service_account(&self) -> PathBuf {
        self.root.join("serviceaccount")
    }

    /// Creates the directories of every emptyDir volume and every file-backed volume, and the
    /// host directories of `hostPath` volumes whose type asks for creation (`DirectoryOrCreate`,
    /// or no type, as the kubelet does for a missing path when the type is empty).
    pub fn prepare(&self, pod: &Pod) -> Result<(), VolumeError> {
        let vols = self.volumes();
        std::fs::create_dir_all(&vols).map_err(io(&vols))?;
        let sa = self.service_account();
        std::fs::create_dir_all(&sa).map_err(io(&sa))?;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if let Some(hp) = &v.host_path {
                let ty = hp.type_.as_deref().unwrap_or("");
                if ty == "DirectoryOrCreate" {
                    let p = PathBuf::from(&hp.path);
                    std::fs::create_dir_all(&p).map_err(io(&p))?;
                }
                continue;
            }
            let dir = vols.join(&v.name);
            if v.empty_dir.is_some() {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                // Any user in the container may write to an emptyDir, as in Kubernetes.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(io(&dir))?;
            } else if v.config_map.is_some()
                || v.secret.is_some()
                || v.downward_api.is_some()
                || v.projected.is_some()
            {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            }
        }
        Ok(())
    }

    /// Makes the volume directories hold exactly `files` (of the volumes they name, among
    /// `managed`, the names of the file-backed volumes); returns whether anything changed.
    pub fn sync_files(
        &self,
        managed: &BTreeSet<String>,
        files: &[VolumeFile],
    ) -> Result<bool, VolumeError> {
        let mut by_volume: BTreeMap<&str, Vec<&VolumeFile>> = BTreeMap::new();
        for f in files {
            by_volume.entry(f.volume.as_str()).or_default().push(f);
        }
        let mut changed = false;
        for volume in managed {
            let dir = self.volumes().join(volume);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let wanted = by_volume.remove(volume.as_str()).unwrap_or_default();
            let mut keep = BTreeSet::new();
            for f in wanted {
                let path = dir.join(&f.path);
                keep.insert(path.clone());
                changed |= write_if_changed(&path, &f.bytes, f.mode)?;
            }
            changed |= remove_unwanted(&dir, &keep)?;
        }
        Ok(changed)
    }

    /// Writes the service-account files.
    pub fn sync_service_account(
        &self,
        token: &str,
        ca_pem: &str,
        namespace: &str,
    ) -> Result<bool, VolumeError> {
        let dir = self.service_account();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut changed = write_if_changed(&dir.join("token"), token.as_bytes(), 0o644)?;
        changed |= write_if_changed(&dir.join("ca.crt"), ca_pem.as_bytes(), 0o644)?;
        changed |= write_if_changed(&dir.join("namespace"), namespace.as_bytes(), 0o644)?;
        Ok(changed)
    }

    /// Removes all the pod's files.
    pub fn remove(&self) -> Result<(), VolumeError> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.root)(e)),
            _ => Ok(()),
        }
    }
}

/// Creates the node-local directory of every PersistentVolumeClaim the pod mounts, under
/// `claim_root` ([`crate::pod::spec::claim_dir`]). The directory stays when the pod goes, so a
/// pod that replaces it on this node finds the claim's data.
pub fn prepare_claims(claim_root: &Path, pod: &Pod) -> Result<(), VolumeError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(pvc) = &v.persistent_volume_claim else {
            continue;
        };
        if pvc.claim_name.is_empty() || pvc.claim_name.contains('/') || pvc.claim_name == ".." {
            continue;
        }
        let dir = crate::pod::spec::claim_dir(claim_root, namespace, &pvc.claim_name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            // Any user in the container may write to it, as to an emptyDir.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .map_err(io(&dir))?;
        }
    }
    Ok(())
}

/// Names of the volumes whose files [`PodDirs::sync_files`] manages.
pub fn file_volumes(pod: &Pod) -> BTreeSet<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter(|v| {
            v.config_map.is_some()
                || v.secret.is_some()
                || v.downward_api.is_some()
                || (v.projected.is_some()
                    && !v.projected.as_ref().is_some_and(|p| {
                        p.sources
                            .iter()
                            .flatten()
                            .any(|s| s.service_account_token.is_some())
                    }))
        })
        .map(|v| v.name.clone())
        .collect()
}

fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, VolumeError> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o7777 == mode
        && std::fs::read(path).is_ok_and(|old| old == bytes)
    {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(true)
}

/// Removes files under `dir` that are not in `keep` (and directories left empty).
fn remove_unwanted(dir: &Path, keep: &BTreeSet<PathBuf>) -> Result<bool, VolumeError> {
    let mut changed = false;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            changed |= remove_unwanted(&p, keep)?;
            if std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none()) {
                std::fs::remove_dir(&p).map_err(io(&p))?;
            }
        } else if !keep.contains(&p) {
            std::fs::remove_file(&p).map_err(io(&p))?;
            changed = true;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(volume: &str, path: &str, bytes: &str, mode: u32) -> VolumeFile {
        VolumeFile {
            volume: volume.into(),
            path: path.into(),
            bytes: bytes.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn files_are_written_updated_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(tmp.path().join("pod"));
        let managed = BTreeSet::from(["cfg".to_string()]);
        let v1 = vec![
            file("cfg", "a.txt", "one", 0o644),
            file("cfg", "sub/b.txt", "two", 0o600),
        ];
        assert!(dirs.sync_files(&managed, &v1).unwrap());
        let a = dirs.volumes().join("cfg/a.txt");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "one");
        let b = dirs.volumes().join("cfg/sub/b.txt");
        assert_eq!(
            std::fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!dirs.sync_files(&managed, &v1).unwrap(), "nothing changed");
        let v2 = vec![file("cfg", "a.txt", "uno", 0o644)];
        assert!(dirs.sync_files(&managed, &v2).unwrap());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "uno");
        assert!(!b.exists() && !dirs.volumes().join("cfg/sub").exists());
        assert!(dirs.sync_service_account("t", "ca", "ns").unwrap());
        assert_eq!(
            std::fs::read_to_string(dirs.service_account().join("namespace")).unwrap(),
            "ns"
        );
        dirs.remove().unwrap();
        assert!(!tmp.path().join("pod").exists());
    }

    #[test]
    fn claim_directories_are_made_once_and_outlive_the_pod() {
        use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodSpec, Volume};
        let tmp = tempfile::tempdir().unwrap();
        let claims = tmp.path().join("claims");
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("ns".into());
        pod.spec = Some(PodSpec {
            volumes: Some(vec![Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: "data-web-0".into(),
                    read_only: None,
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        });
        prepare_claims(&claims, &pod).unwrap();
        let dir = claims.join("ns/data-web-0");
        std::fs::write(dir.join("kept"), "x").unwrap();
        let dirs = PodDirs::new(tmp.path().join("pod"));
        dirs.prepare(&pod).unwrap();
        dirs.remove().unwrap();
        prepare_claims(&claims, &pod).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("kept")).unwrap(), "x");
    }
}
