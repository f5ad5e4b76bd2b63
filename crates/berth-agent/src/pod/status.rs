//! A pod's status from what runs on the engine, as the kubelet computes it: container statuses
//! (state, last state, ready, started, restart count, image, image ID, container ID), phase,
//! conditions (PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady, Ready),
//! IPs and start time.
//!
//! Owns [`Observed`] (the pod's containers on the engine), [`StatusInput`] and [`pod_status`].
//! Pure: no I/O, no clock (the caller passes `now`). Must not decide restarts or waiting reasons;
//! the worker passes those in.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pod::probe::ProbeResults;
use crate::runtime::{self, ContainerState as EngineState};

/// A pod's containers on the engine.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The running sandbox, if any.
    pub sandbox: Option<runtime::ContainerStatus>,
    /// Containers by name, newest (highest restart count) first.
    pub containers: BTreeMap<String, Vec<runtime::ContainerStatus>>,
}

impl Observed {
    /// The newest container of `name`.
    pub fn current(&self, name: &str) -> Option<&runtime::ContainerStatus> {
        self.containers.get(name).and_then(|v| v.first())
    }

    /// The container of `name` before the newest.
    pub fn previous(&self, name: &str) -> Option<&runtime::ContainerStatus> {
        self.containers.get(name).and_then(|v| v.get(1))
    }
}

/// Why a container is not running, as the worker decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// E.g. `ContainerCreating`, `CrashLoopBackOff`, `ErrImagePull`.
    pub reason: String,
    /// Details, may be empty.
    pub message: String,
}

/// Everything [`pod_status`] needs.
#[derive(Clone, Debug)]
pub struct StatusInput<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Its containers on the engine.
    pub observed: &'a Observed,
    /// Waiting reasons of containers that do not run, by name.
    pub waiting: &'a BTreeMap<String, Waiting>,
    /// Probe verdicts of running containers, by name.
    pub probes: &'a BTreeMap<String, ProbeResults>,
    /// The node's IP.
    pub host_ip: Option<IpAddr>,
    /// When the agent first saw the pod (used when the status has no start time yet).
    pub start_time: Timestamp,
    /// The time of this computation.
    pub now: Timestamp,
}

fn terminated(c: &runtime::ContainerStatus) -> Option<ContainerStateTerminated> {
    match &c.state {
        EngineState::Exited {
            code,
            reason,
            message,
            started_at,
            finished_at,
        } => Some(ContainerStateTerminated {
            exit_code: i32::try_from(*code).unwrap_or(i32::MAX),
            reason: Some(reason.clone()),
            message: message.clone().filter(|m| !m.is_empty()),
            started_at: started_at.map(Time),
            finished_at: finished_at.map(Time),
            container_id: Some(format!("docker://{}", c.id)),
            signal: None,
        }),
        _ => None,
    }
}

fn image_id(c: &runtime::ContainerStatus) -> String {
    format!("docker-pullable://{}", c.image_id)
}

/// A waiting state with the worker's reason, `ContainerCreating` when it gave none.
fn waiting_state(waiting: Option<&Waiting>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(
                waiting
                    .map(|w| w.reason.clone())
                    .unwrap_or_else(|| "ContainerCreating".into()),
            ),
            message: waiting.map(|w| w.message.clone()).filter(|m| !m.is_empty()),
        }),
        ..ContainerState::default()
    }
}

/// Status of one container.
fn container_status(input: &StatusInput<'_>, spec: &Container, init: bool) -> ContainerStatus {
    let current = input.observed.current(&spec.name);
    let previous = input.observed.previous(&spec.name);
    let waiting = input.waiting.get(&spec.name);
    let probes = input.probes.get(&spec.name);
    let mut st = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        ..ContainerStatus::default()
    };
    let Some(cur) = current else {
        st.state = Some(waiting_state(waiting));
        st.started = Some(false);
        return st;
    };
    st.container_id = Some(format!("docker://{}", cur.id));
    st.image_id = image_id(cur);
    st.restart_count = i32::try_from(cur.restart_count).unwrap_or(i32::MAX);
    let last = previous.and_then(terminated).map(|t| ContainerState {
        terminated: Some(t),
        ..ContainerState::default()
    });
    match &cur.state {
        EngineState::Running { started_at } => {
            // No prober yet (the container has just started): nothing was probed.
            let results = probes
                .cloned()
                .unwrap_or_else(|| ProbeResults::initial(spec));
            st.state = Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: started_at.map(Time),
                }),
                ..ContainerState::default()
            });
            st.started = Some(results.started());
            st.ready = !init && results.ready();
            st.last_state = last;
        }
        EngineState::Exited { .. } => {
            let term = terminated(cur);
            match waiting {
                // Exited and about to restart (back-off): waiting now, this run is the last.
                Some(w) => {
                    st.state = Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(w.reason.clone()),
                            message: Some(w.message.clone()).filter(|m| !m.is_empty()),
                        }),
                        ..ContainerState::default()
                    });
                    st.last_state = term.map(|t| ContainerState {
                        terminated: Some(t),
                        ..ContainerState::default()
                    });
                }
                None => {
                    // An init container that completed counts as ready.
                    st.ready = init && term.as_ref().is_some_and(|t| t.exit_code == 0);
                    st.state = term.map(|t| ContainerState {
                        terminated: Some(t),
                        ..ContainerState::default()
                    });
                    st.last_state = last;
                }
            }
            st.started = Some(false);
        }
        EngineState::Created | EngineState::Unknown { .. } => {
            st.state = Some(waiting_state(waiting));
            st.started = Some(false);
            st.last_state = last;
        }
    }
    st
}

fn is_terminated_with(st: &ContainerStatus, pred: impl Fn(i32) -> bool) -> bool {
    st.state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| pred(t.exit_code))
}

/// The pod phase from its container statuses (the kubelet's `getPhase`).
fn phase(
    restart_policy: &str,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    init_done: bool,
) -> &'static str {
    if !init_done {
        let init_failed = init.iter().any(|s| is_terminated_with(s, |c| c != 0));
        return if init_failed && restart_policy == "Never" {
            "Failed"
        } else {
            "Pending"
        };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in app {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            let restarted_before = s
                .last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some());
            if restarted_before {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded && app.iter().all(|s| is_terminated_with(s, |c| c == 0)) => {
                "Succeeded"
            }
            "OnFailure" => "Running",
            _ => "Failed",
        }
    } else {
        "Pending"
    }
}

fn condition(
    pod: &Pod,
    type_: &str,
    ok: bool,
    reason: Option<String>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: if ok { None } else { reason },
        message: if ok { None } else { message },
        last_transition_time: Some(since),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's status.
pub fn pod_status(input: &StatusInput<'_>) -> PodStatus {
    let pod = input.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_status(input, c, true))
        .collect();
    let app: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(input, c, false))
        .collect();
    let init_done = init.iter().all(|s| s.ready);
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let phase = phase(policy, &init, &app, init_done);
    let pod_ip = input.observed.sandbox.as_ref().and_then(|s| s.ip);
    let not_ready: Vec<&str> = app
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let now = input.now;
    let terminal = phase == "Succeeded" || phase == "Failed";
    let containers_ready = not_ready.is_empty();
    let (ready_reason, ready_message) = if terminal {
        (Some("PodCompleted".to_string()), None)
    } else {
        (
            Some("ContainersNotReady".to_string()),
            Some(format!(
                "containers with unready status: [{}]",
                not_ready.join(" ")
            )),
        )
    };
    let conditions = vec![
        condition(
            pod,
            "PodReadyToStartContainers",
            pod_ip.is_some() && !terminal,
            None,
            None,
            now,
        ),
        condition(
            pod,
            "Initialized",
            init_done,
            Some("ContainersNotInitialized".into()),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
            now,
        ),
        condition(
            pod,
            "Ready",
            containers_ready && !terminal,
            ready_reason.clone(),
            ready_message.clone(),
            now,
        ),
        condition(
            pod,
            "ContainersReady",
            containers_ready && !terminal,
            ready_reason,
            ready_message,
            now,
        ),
        condition(pod, "PodScheduled", true, None, None, now),
    ];
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone())
        .unwrap_or(Time(input.start_time));
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: input.host_ip.map(|ip| ip.to_string()),
        host_ips: input.host_ip.map(|ip| vec![HostIP { ip: ip.to_string() }]),
        pod_ip: pod_ip.map(|ip| ip.to_string()),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(start_time),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn container(name: &str, restart: u32, state: EngineState) -> runtime::ContainerStatus {
        runtime::ContainerStatus {
            id: format!("{name}-{restart}"),
            name: format!("k8s_{name}_{restart}"),
            state,
            image: "busybox:1".into(),
            image_id: "sha256:abc".into(),
            restart_count: restart,
            created_at: None,
            labels: BTreeMap::new(),
            ip: None,
        }
    }

    fn exited(code: i64) -> EngineState {
        EngineState::Exited {
            code,
            reason: runtime::exit_reason(code, false).into(),
            message: None,
            started_at: Some(Timestamp::from_second(100).unwrap()),
            finished_at: Some(Timestamp::from_second(110).unwrap()),
        }
    }

    fn running() -> EngineState {
        EngineState::Running {
            started_at: Some(Timestamp::from_second(120).unwrap()),
        }
    }

    fn status(p: &Pod, observed: &Observed, waiting: &BTreeMap<String, Waiting>) -> PodStatus {
        let probes = BTreeMap::new();
        pod_status(&StatusInput {
            pod: p,
            observed,
            waiting,
            probes: &probes,
            host_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            start_time: Timestamp::from_second(50).unwrap(),
            now: Timestamp::from_second(200).unwrap(),
        })
    }

    fn cond(s: &PodStatus, t: &str) -> String {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
            .status
            .clone()
    }

    #[test]
    fn a_container_not_yet_probed_is_not_ready_when_it_has_a_readiness_probe() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "a", "image": "busybox:1",
            "readinessProbe": {"exec": {"command": ["false"]}},
            "startupProbe": {"exec": {"command": ["true"]}},
        }]}}));
        let obs = Observed {
            sandbox: Some(container("POD", 0, running())),
            containers: BTreeMap::from([("a".into(), vec![container("a", 0, running())])]),
        };
        // Just started: no prober has reported yet.
        let s = status(&p, &obs, &BTreeMap::new());
        assert_eq!(cond(&s, "Ready"), "False");
        let cs = &s.container_statuses.unwrap()[0];
        assert!(!cs.ready);
        assert_eq!(cs.started, Some(false));
    }

    #[test]
    fn a_running_pod_is_ready_with_ips() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "busybox:1"}]}}),
        );
        let mut sandbox = container("POD", 0, running());
        sandbox.ip = Some(Ipv4Addr::new(10, 42, 0, 5));
        let obs = Observed {
            sandbox: Some(sandbox),
            containers: BTreeMap::from([("a".into(), vec![container("a", 0, running())])]),
        };
        let s = status(&p, &obs, &BTreeMap::new());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.5"));
        assert_eq!(cond(&s, "Ready"), "True");
        let cs = &s.container_statuses.unwrap()[0];
        assert!(cs.ready && cs.started == Some(true));
        assert_eq!(cs.container_id.as_deref(), Some("docker://a-0"));
    }

    #[test]
    fn crash_loop_shows_waiting_with_the_last_termination() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}));
        let obs = Observed {
            sandbox: None,
            containers: BTreeMap::from([(
                "a".into(),
                vec![container("a", 2, exited(1)), container("a", 1, exited(1))],
            )]),
        };
        let waiting = BTreeMap::from([(
            "a".to_string(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 20s".into(),
            },
        )]);
        let s = status(&p, &obs, &waiting);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.unwrap()[0];
        assert_eq!(cs.restart_count, 2);
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            cs.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let mk = |policy: &str| {
            pod(
                json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": policy, "containers": [{"name": "a"}, {"name": "b"}]}}),
            )
        };
        let obs = |a: i64, b: i64| Observed {
            sandbox: None,
            containers: BTreeMap::from([
                ("a".into(), vec![container("a", 0, exited(a))]),
                ("b".into(), vec![container("b", 0, exited(b))]),
            ]),
        };
        let none = BTreeMap::new();
        assert_eq!(
            status(&mk("Never"), &obs(0, 0), &none).phase.as_deref(),
            Some("Succeeded")
        );
        assert_eq!(
            status(&mk("Never"), &obs(0, 1), &none).phase.as_deref(),
            Some("Failed")
        );
        assert_eq!(
            status(&mk("OnFailure"), &obs(0, 0), &none).phase.as_deref(),
            Some("Succeeded")
        );
        let s = status(&mk("Never"), &obs(0, 0), &none);
        assert_eq!(cond(&s, "Ready"), "False");
        assert_eq!(
            s.conditions
                .unwrap()
                .iter()
                .find(|c| c.type_ == "Ready")
                .unwrap()
                .reason
                .as_deref(),
            Some("PodCompleted")
        );
    }

    #[test]
    fn init_containers_gate_the_app_containers() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "setup"}], "containers": [{"name": "a"}]}}));
        let waiting = BTreeMap::from([(
            "a".to_string(),
            Waiting {
                reason: "PodInitializing".into(),
                message: String::new(),
            },
        )]);
        let obs = Observed {
            sandbox: None,
            containers: BTreeMap::from([("setup".into(), vec![container("setup", 0, running())])]),
        };
        let s = status(&p, &obs, &waiting);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "Initialized"), "False");
        let obs = Observed {
            sandbox: None,
            containers: BTreeMap::from([
                ("setup".into(), vec![container("setup", 0, exited(0))]),
                ("a".into(), vec![container("a", 0, running())]),
            ]),
        };
        let s = status(&p, &obs, &BTreeMap::new());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Initialized"), "True");
        assert!(s.init_container_statuses.unwrap()[0].ready);
    }
}
