//! Several nodes on one machine: a `berth server` (without its own agent) and `berth agent`
//! processes joined with a token, each with its own node name, data directory and streaming
//! port, all on one dockerd. Agents can be killed like a dead machine, frozen and thawed, and
//! restarted; more can join later.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{
    TestServer, berth_binary, eventually, remove_node_containers, unique_cluster_cidr,
    unique_node_name,
};

/// One `berth agent` process.
pub struct TestAgent {
    /// The node's name.
    pub name: String,
    /// The agent's data directory.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl TestAgent {
    fn spawn(&mut self) {
        let child = Command::new(berth_binary())
            .arg("agent")
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("berth agent starts");
        self.child = Some(child);
    }

    /// The agent's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the agent with SIGKILL (its containers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What a dead machine looks like: the agent is killed and its containers are gone.
    pub fn kill_machine(&mut self) {
        self.kill9();
        remove_node_containers(&self.name);
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the agent.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let ok = Command::new("kill")
                .args([format!("-{signal}"), pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -{signal} {pid}");
        }
    }

    /// Starts the agent again (after a kill), with the credentials it stored; no token needed.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill9();
        remove_node_containers(&self.name);
    }
}

/// A server and its agents. Dereferences to the [`TestServer`] for kubectl.
pub struct TestCluster {
    /// The agents, in the order they joined (dropped before the server).
    pub agents: Vec<TestAgent>,
    /// The server (started with `--disable-agent`).
    pub server: TestServer,
    token: String,
    agent_flags: Vec<String>,
}

impl Deref for TestCluster {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl TestCluster {
    /// A server and `nodes` agents, waiting until every node is Ready.
    pub fn start(nodes: usize) -> Self {
        Self::start_with(nodes, &[], &[])
    }

    /// Like [`TestCluster::start`] with extra flags for the server and for every agent.
    pub fn start_with(nodes: usize, server_flags: &[&str], agent_flags: &[&str]) -> Self {
        let cidr = unique_cluster_cidr();
        let mut flags = vec!["--cluster-cidr", cidr.as_str()];
        flags.extend_from_slice(server_flags);
        let server = TestServer::start_with(&flags);
        let token = create_token(&server);
        let mut cluster = Self {
            server,
            agents: Vec::new(),
            token,
            agent_flags: agent_flags.iter().map(|s| s.to_string()).collect(),
        };
        for _ in 0..nodes {
            cluster.spawn_agent();
        }
        cluster.wait_ready(Duration::from_secs(90));
        cluster
    }

    fn spawn_agent(&mut self) -> usize {
        self.spawn_agent_with_env(&[])
    }

    fn spawn_agent_with_env(&mut self, env: &[(&str, &str)]) -> usize {
        let name = unique_node_name();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = vec![
            "--server".into(),
            self.server.url.clone(),
            "--token".into(),
            self.token.clone(),
            "--node-name".into(),
            name.clone(),
            "--data-dir".into(),
            dir.path().display().to_string(),
            "--node-ip".into(),
            "127.0.0.1".into(),
            "--listen-port".into(),
            "0".into(),
            "--lease-renew-interval".into(),
            "1s".into(),
        ];
        args.extend(self.agent_flags.iter().cloned());
        let mut agent = TestAgent {
            name,
            dir,
            child: None,
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        agent.spawn();
        self.agents.push(agent);
        self.agents.len() - 1
    }

    /// Joins one more node and waits until it is Ready; returns its index.
    pub fn add_agent(&mut self) -> usize {
        self.add_agent_with_env(&[])
    }

    /// [`TestCluster::add_agent`] with extra environment for the agent process (e.g.
    /// `DOCKER_HOST`).
    pub fn add_agent_with_env(&mut self, env: &[(&str, &str)]) -> usize {
        let i = self.spawn_agent_with_env(env);
        let name = self.agents[i].name.clone();
        eventually(Duration::from_secs(90), || {
            self.node_ready(&name).filter(|r| *r).map(|_| ())
        })
        .unwrap_or_else(|| panic!("node {name} did not become Ready"));
        i
    }

    /// The node names, in join order.
    pub fn node_names(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.name.clone()).collect()
    }

    /// The Ready condition of `node` (None if the node or condition is missing).
    pub fn node_ready(&self, node: &str) -> Option<bool> {
        let out = self.server.kubectl(&["get", "node", node, "-o", "json"]);
        if !out.status.success() {
            return None;
        }
        let node: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        node["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .map(|c| c["status"] == "True")
    }

    /// Waits until every agent's node is Ready.
    pub fn wait_ready(&self, timeout: Duration) {
        for name in self.node_names() {
            eventually(timeout, || {
                self.node_ready(&name).filter(|r| *r).map(|_| ())
            })
            .unwrap_or_else(|| panic!("node {name} did not become Ready in {timeout:?}"));
        }
    }

    /// The server's data directory (its admin kubeconfig is there).
    pub fn data_dir(&self) -> PathBuf {
        self.server.data_dir().to_path_buf()
    }
}

/// `berth token create` against the server's data directory; the token is the last line.
fn create_token(server: &TestServer) -> String {
    let out = Command::new(berth_binary())
        .args(["token", "create", "--data-dir"])
        .arg(server.data_dir())
        .output()
        .expect("berth token create runs");
    assert!(
        out.status.success(),
        "berth token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("a token line")
        .trim()
        .to_owned()
}
