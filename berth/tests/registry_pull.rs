//! End to end: an image in a registry that requires a password (Debian's `docker-registry` with
//! an htpasswd file) is pulled through the pod's `imagePullSecrets`; without them the pull fails
//! with ErrImagePull / ImagePullBackOff.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestServer, busybox_image, eventually, require};
use serde_json::Value;

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn waiting_reason(s: &TestServer, pod: &str) -> Option<String> {
    let out = s.kubectl(&["get", "pod", pod, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_private_image_is_pulled_with_the_pull_secret() {
    if !(require("docker", &["info"])
        && require("kubectl", &["version", "--client"])
        && require("htpasswd", &["-nbB", "u", "p"])
        && require("docker-registry", &["--version"]))
    {
        return;
    }
    let img = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let htpasswd = ok(Command::new("htpasswd").args(["-nbB", "berth", "s3cret"]));
    std::fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {root}/htpasswd\n",
        root = dir.path().display()
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let _registry = Registry(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts"),
    );
    let registry = format!("127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&registry).ok().map(|_| ())
    });
    assert!(up.is_some(), "the registry listens");

    // Push the image with a throw-away client config, then drop the local tag so the node
    // has to pull it.
    let image = format!("{registry}/private/app:1");
    let client_cfg = dir.path().join("docker-client");
    ok(Command::new("docker").args(["tag", img, &image]));
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(&client_cfg)
        .args(["login", &registry, "-u", "berth", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    login.stdin.take().unwrap().write_all(b"s3cret").unwrap();
    assert!(login.wait().unwrap().success(), "docker login");
    ok(Command::new("docker")
        .arg("--config")
        .arg(&client_cfg)
        .args(["push", &image]));
    ok(Command::new("docker").args(["rmi", &image]));

    let s = TestServer::start_with_agent(&[]);
    let node = s.node.clone().unwrap();
    s.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={registry}"),
        "--docker-username=berth",
        "--docker-password=s3cret",
    ]);
    let pod = |name: &str, secrets: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n{secrets}  containers:\n  - name: app\n    image: {image}\n    imagePullPolicy: Always\n    command: [sleep, '3600']\n"
        )
    };
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &pod("anonymous", ""));
    let refused = eventually(Duration::from_secs(60), || {
        waiting_reason(&s, "anonymous").filter(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    assert!(refused.is_some(), "a pull without credentials fails");

    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        &pod("private", "  imagePullSecrets: [{name: regcred}]\n"),
    );
    let running = eventually(Duration::from_secs(60), || {
        let out = s.kubectl(&["get", "pod", "private", "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"]["phase"] == "Running").then_some(v)
    });
    let v = running.expect("the pod with the pull secret runs");
    assert!(
        v["status"]["containerStatuses"][0]["imageID"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{v}"
    );
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}
