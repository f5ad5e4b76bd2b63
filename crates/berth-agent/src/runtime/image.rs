//! Local build context for the busybox sandbox/test image: no registry needed.
//!
//! Owns the Dockerfile and the in-memory tar of the build context (`Dockerfile` plus the static
//! `busybox` binary). Must not talk to the engine: [`super::ContainerRuntime::build_image_from_tar`]
//! builds the tar this module returns ([`ensure_busybox_image`] only chains the two).

use std::path::Path;

use bytes::Bytes;

use super::{ContainerRuntime, ImageInfo, RuntimeError};

/// Where Debian's `busybox-static` installs its static binary.
pub const DEFAULT_BUSYBOX_PATH: &str = "/bin/busybox";

/// Tag the agent gives the sandbox image it builds.
pub const SANDBOX_IMAGE_TAG: &str = "berth.local/pause:busybox";

/// The default command of the image: wait for SIGTERM (or SIGINT) and exit 0. `sh` as PID 1
/// ignores SIGTERM unless trapped, and `wait` on a background `sleep` lets the trap run at once.
pub const SANDBOX_COMMAND: [&str; 3] = [
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM INT; sleep 2147483647 & wait",
];

/// The Dockerfile of the image: `FROM scratch`, the busybox binary and its applet links.
pub fn dockerfile() -> String {
    let cmd = SANDBOX_COMMAND
        .iter()
        .map(|part| format!("\"{}\"", part.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         ENV PATH=/bin\n\
         LABEL dev.berth.image=sandbox\n\
         CMD [{cmd}]\n"
    )
}

/// Makes the busybox image present under `tag`: returns the existing image, or builds it from
/// the static busybox binary at `busybox`.
pub async fn ensure_busybox_image(
    runtime: &dyn ContainerRuntime,
    tag: &str,
    busybox: &Path,
) -> Result<ImageInfo, RuntimeError> {
    if let Some(image) = runtime.image_present(tag).await? {
        return Ok(image);
    }
    let tar = busybox_image_tar(busybox)?;
    runtime.build_image_from_tar(tag, tar).await
}

/// The build context as a tar, from the static busybox binary at `busybox`.
pub fn busybox_image_tar(busybox: &Path) -> Result<Bytes, RuntimeError> {
    let binary = std::fs::read(busybox).map_err(|source| RuntimeError::Io {
        context: format!(
            "reading the static busybox binary {} (Debian package busybox-static)",
            busybox.display()
        ),
        source,
    })?;
    build_context_tar(&[
        ("Dockerfile", dockerfile().as_bytes(), 0o644),
        ("busybox", &binary, 0o755),
    ])
}

/// A tar of the given `(path, content, mode)` files.
pub fn build_context_tar(files: &[(&str, &[u8], u32)]) -> Result<Bytes, RuntimeError> {
    let io = |source| RuntimeError::Io {
        context: "writing the build context tar".to_owned(),
        source,
    };
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *content)
            .map_err(io)?;
    }
    builder.into_inner().map(Bytes::from).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_has_dockerfile_and_executable_busybox() {
        let tar = build_context_tar(&[
            ("Dockerfile", dockerfile().as_bytes(), 0o644),
            ("busybox", b"\x7fELF", 0o755),
        ])
        .expect("tar");
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let mode = entry.header().mode().expect("mode");
            let mut content = String::new();
            if path == "Dockerfile" {
                std::io::Read::read_to_string(&mut entry, &mut content).expect("read");
                assert!(content.starts_with("FROM scratch\n"));
                assert!(content.contains("COPY busybox /bin/busybox"));
                assert!(content.contains(
                    "CMD [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM INT; sleep 2147483647 & wait\"]"
                ));
            }
            seen.push((path, mode));
        }
        assert_eq!(
            seen,
            vec![
                ("Dockerfile".to_owned(), 0o644),
                ("busybox".to_owned(), 0o755)
            ]
        );
    }

    #[tokio::test]
    async fn ensure_busybox_image_builds_only_when_absent() {
        let fake = crate::runtime::FakeRuntime::new();
        let busybox = std::env::temp_dir().join(format!("fake-busybox-{}", std::process::id()));
        std::fs::write(&busybox, b"\x7fELF").expect("write");
        let built = ensure_busybox_image(&fake, SANDBOX_IMAGE_TAG, &busybox)
            .await
            .expect("built");
        let again = ensure_busybox_image(&fake, SANDBOX_IMAGE_TAG, &busybox)
            .await
            .expect("present");
        let _ = std::fs::remove_file(&busybox);
        assert_eq!(built, again);
        let calls = fake.calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!(calls[0], format!("image_present {SANDBOX_IMAGE_TAG}"));
        assert!(calls[1].starts_with(&format!("build_image_from_tar {SANDBOX_IMAGE_TAG} ")));
        assert_eq!(calls[2], format!("image_present {SANDBOX_IMAGE_TAG}"));
    }

    #[test]
    fn missing_busybox_is_a_clear_error() {
        let err = busybox_image_tar(Path::new("/nonexistent/busybox")).unwrap_err();
        assert!(err.to_string().contains("busybox-static"), "{err}");
    }
}
