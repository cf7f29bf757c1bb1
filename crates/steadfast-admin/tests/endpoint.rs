//! The admin endpoint through HTTP: every route, the token, and bad
//! requests, each answered with a JSON error and no change of state.

mod support;

use std::net::SocketAddr;

use steadfast::{WorkflowHistory, WorkflowOptions};
use steadfast_admin::api::{parse_time, time_text};
use steadfast_admin::{AdminAddress, AdminEndpoint, AdminError};
use support::*;

fn tcp(server: &steadfast_admin::AdminServer) -> SocketAddr {
    match server.address() {
        AdminAddress::Tcp(address) => *address,
        other => panic!("not TCP: {other:?}"),
    }
}

async fn loopback(engine: &steadfast::Engine) -> steadfast_admin::AdminServer {
    AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .serve()
        .await
        .expect("endpoint starts")
}

#[tokio::test]
async fn a_signal_sent_through_the_endpoint_completes_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    let handle = engine
        .start_workflow(
            GREETER,
            "greet-1",
            "Hello".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();

    let info = call(address, "GET", "/api/v1", None, None).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["server"], "steadfast");
    assert_eq!(info.header("content-type"), Some("application/json"));

    let described = call(address, "GET", "/api/v1/workflows/greet-1", None, None).await;
    assert_eq!(described.status, 200, "{:?}", described.json());
    let d = described.json();
    assert_eq!(d["workflow_id"], "greet-1");
    assert_eq!(d["workflow_type"], "Greeter");
    assert_eq!(d["status"], "Running");
    assert_eq!(d["run_id"], handle.run_id().to_string());
    assert!(d["start_time"].as_str().unwrap().ends_with('Z'));

    // A query is answered by the app's code, with its argument.
    let asked = call(
        address,
        "POST",
        "/api/v1/workflows/greet-1/query",
        Some(r#"{"name": "greet", "args": "Bo"}"#),
        None,
    )
    .await;
    assert_eq!(asked.status, 200, "{:?}", asked.json());
    assert_eq!(asked.json()["result"], "Hello, Bo?");
    let unknown = call(
        address,
        "POST",
        "/api/v1/workflows/greet-1/query",
        Some(r#"{"name": "nothing"}"#),
        None,
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.code(), "unknown_query");

    let signaled = call(
        address,
        "POST",
        "/api/v1/workflows/greet-1/signal",
        Some(r#"{"name": "name", "input": "Ada"}"#),
        None,
    )
    .await;
    assert_eq!(signaled.status, 200, "{:?}", signaled.json());
    assert_eq!(signaled.json()["outcome"], "signaled");
    assert_eq!(handle.result().await.unwrap(), "Hello, Ada!");

    let described = call(address, "GET", "/api/v1/workflows/greet-1", None, None).await;
    assert_eq!(described.json()["status"], "Completed");
    assert!(described.json()["close_time"].is_string());

    // The history comes in the history JSON form, which the replayer reads.
    let history = call(
        address,
        "GET",
        "/api/v1/workflows/greet-1/history",
        None,
        None,
    )
    .await;
    assert_eq!(history.status, 200);
    // Each event also has its time as RFC 3339, which the form's readers skip.
    let events = engine.history("greet-1").await.unwrap();
    let answer = history.json();
    let times: Vec<&str> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp_rfc3339"].as_str().expect("timestamp_rfc3339"))
        .collect();
    let expected: Vec<String> = events.iter().map(|e| time_text(e.timestamp)).collect();
    assert_eq!(times, expected);
    assert!(times[0].ends_with('Z') && parse_time(times[0]).is_some());
    assert!(answer["events"][0]["timestamp"]["secs_since_epoch"].is_u64());
    let history = WorkflowHistory::from_json(std::str::from_utf8(&history.body).unwrap())
        .expect("history JSON");
    assert_eq!(history.workflow_id, "greet-1");
    assert_eq!(history.events, events);

    // The same run by its ID.
    let path = format!("/api/v1/workflows/greet-1?run_id={}", handle.run_id());
    assert_eq!(call(address, "GET", &path, None, None).await.status, 200);

    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_update_through_the_endpoint_runs_once_per_id_and_a_rejection_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    engine
        .start_workflow(GREETER, "upd-1", "Hi".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    let path = "/api/v1/workflows/upd-1/update";

    let first = call(
        address,
        "POST",
        path,
        Some(r#"{"name": "count", "input": 2, "update_id": "u-1"}"#),
        None,
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.json());
    assert_eq!(first.json()["result"], 2);
    assert_eq!(first.json()["update_id"], "u-1");
    // The same ID again: the first outcome, the handler not run again.
    let again = call(
        address,
        "POST",
        path,
        Some(r#"{"name": "count", "input": 2, "update_id": "u-1"}"#),
        None,
    )
    .await;
    assert_eq!(again.json()["result"], 2, "{:?}", again.json());
    let other = call(
        address,
        "POST",
        path,
        Some(r#"{"name": "count", "input": 3}"#),
        None,
    )
    .await;
    assert_eq!(other.json()["result"], 5, "{:?}", other.json());

    // Refusals: each a 4xx with its code, none writes an event.
    let events = engine.history("upd-1").await.unwrap().len();
    for (body, status, code) in [
        (r#"{"name": "count", "input": 0}"#, 422, "update_rejected"),
        (r#"{"name": "nothing", "input": 1}"#, 400, "unknown_update"),
        (r#"{"name": "count", "input": "two"}"#, 400, "bad_payload"),
        (r#"{"name": "", "input": 1}"#, 400, "invalid_argument"),
        (r#"{"name": "count", "inputs": 1}"#, 400, "bad_request"),
    ] {
        let refused = call(address, "POST", path, Some(body), None).await;
        assert_eq!(refused.status, status, "{body}: {:?}", refused.json());
        assert_eq!(refused.code(), code, "{body}");
    }
    let rejected = call(
        address,
        "POST",
        path,
        Some(r#"{"name": "count", "input": 0}"#),
        None,
    )
    .await;
    let message = rejected.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("count at least one greeting"), "{message}");
    assert_eq!(engine.history("upd-1").await.unwrap().len(), events);
    let missing = call(
        address,
        "POST",
        "/api/v1/workflows/nobody/update",
        Some(r#"{"name": "count", "input": 1}"#),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);

    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_shows_pending_children_and_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    let parent = engine
        .start_workflow(
            PARENT,
            "p-1",
            "p-1-child".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    eventually("the parent's pending child", || async move {
        let described = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
        described.json()["pending_children"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    let described = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
    let children = described.json()["pending_children"].clone();
    assert_eq!(children[0]["workflow_id"], "p-1-child");
    assert_eq!(children[0]["workflow_type"], "Greeter");
    assert_eq!(children[0]["parent_close_policy"], "Terminate");
    let child = call(address, "GET", "/api/v1/workflows/p-1-child", None, None).await;
    assert_eq!(child.json()["parent"]["workflow_id"], "p-1");
    assert_eq!(
        child.json()["parent"]["run_id"],
        parent.run_id().to_string()
    );

    engine
        .signal("p-1-child", NAME, "Ada".into())
        .await
        .unwrap();
    assert_eq!(parent.result().await.unwrap(), "Hi, Ada!");
    let done = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
    assert!(
        done.json()["pending_children"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_shows_a_local_activity_waiting_out_a_recorded_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    engine
        .start_workflow(LOCAL_BACKOFF, "la-1", (), WorkflowOptions::new())
        .await
        .unwrap();
    eventually("the local activity's backoff", || async move {
        let described = call(address, "GET", "/api/v1/workflows/la-1", None, None).await;
        described.json()["pending_activities"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    let described = call(address, "GET", "/api/v1/workflows/la-1", None, None).await;
    let a = described.json()["pending_activities"][0].clone();
    assert_eq!(a["local"], true, "{a}");
    assert_eq!(a["activity_type"], "admin.flaky");
    assert_eq!(a["attempt"], 2);
    let next = a["next_attempt_at"]
        .as_str()
        .expect("the next attempt's time");
    let started = described.json()["start_time"].as_str().unwrap().to_string();
    assert!(
        parse_time(next).unwrap() > parse_time(&started).unwrap(),
        "{next} after {started}"
    );
    assert_eq!(a["last_failure"]["error_type"], "Flaky");
    assert_eq!(a["last_failure"]["message"], "not yet");
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_shows_pending_updates() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    engine
        .start_workflow(GREETER, "u-1", "Hi".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    let caller = engine.clone();
    let update = tokio::spawn(async move { caller.update("u-1", HOLD, ()).await });
    eventually("the pending update", || async move {
        let described = call(address, "GET", "/api/v1/workflows/u-1", None, None).await;
        described.json()["pending_updates"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
    })
    .await;
    let described = call(address, "GET", "/api/v1/workflows/u-1", None, None).await;
    let updates = described.json()["pending_updates"].clone();
    assert_eq!(updates[0]["update_name"], "hold");
    assert!(
        updates[0]["accepted_at"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );
    engine.signal("u-1", RELEASE, 5).await.unwrap();
    assert_eq!(update.await.unwrap().unwrap(), 5);
    let done = call(address, "GET", "/api/v1/workflows/u-1", None, None).await;
    assert!(
        done.json()["pending_updates"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    for i in 0..5 {
        engine
            .start_workflow(
                GREETER,
                &format!("list-{i}"),
                "Hi".into(),
                WorkflowOptions::new(),
            )
            .await
            .unwrap();
    }
    engine.terminate("list-0", "done").await.unwrap();

    let mut seen = Vec::new();
    let mut path = "/api/v1/workflows?page_size=2".to_string();
    loop {
        let page = call(address, "GET", &path, None, None).await;
        assert_eq!(page.status, 200, "{:?}", page.json());
        let page = page.json();
        let executions = page["executions"].as_array().unwrap().clone();
        assert!(executions.len() <= 2);
        seen.extend(
            executions
                .iter()
                .map(|e| e["workflow_id"].as_str().unwrap().to_string()),
        );
        match page["next_page_token"].as_str() {
            Some(token) => path = format!("/api/v1/workflows?page_size=2&next_page_token={token}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["list-0", "list-1", "list-2", "list-3", "list-4"]);

    let terminated = call(
        address,
        "GET",
        "/api/v1/workflows?status=Terminated",
        None,
        None,
    )
    .await;
    let terminated = terminated.json();
    let ids: Vec<&str> = terminated["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["workflow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["list-0"]);

    let prefix = call(
        address,
        "GET",
        "/api/v1/workflows?workflow_id_prefix=list-3&workflow_type=Greeter",
        None,
        None,
    )
    .await;
    assert_eq!(prefix.json()["executions"].as_array().unwrap().len(), 1);

    let after = call(
        address,
        "GET",
        "/api/v1/workflows?started_after=2100-01-01T00:00:00Z",
        None,
        None,
    )
    .await;
    assert_eq!(after.status, 200);
    assert!(after.json()["executions"].as_array().unwrap().is_empty());
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn counts_and_the_search_attribute_filter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    let empty = call(address, "GET", "/api/v1/counts", None, None).await;
    assert_eq!(empty.status, 200, "{:?}", empty.json());
    assert_eq!(empty.json()["total"], 0);
    for (i, customer) in ["acme", "acme", "globex"].iter().enumerate() {
        let options = WorkflowOptions::new()
            .with_search_attribute("Customer", *customer)
            .with_search_attribute("Step", i as i64);
        engine
            .start_workflow(GREETER, &format!("sa-{i}"), "Hi".into(), options)
            .await
            .unwrap();
    }
    engine.terminate("sa-0", "done").await.unwrap();

    let counts = call(address, "GET", "/api/v1/counts", None, None)
        .await
        .json();
    assert_eq!(counts["total"], 3, "{counts}");
    assert_eq!(counts["parked"], 0, "{counts}");
    let statuses = counts["statuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 7, "{counts}");
    assert_eq!(statuses[0]["status"], "Running");
    assert_eq!(statuses[0]["count"], 2);
    let terminated = statuses
        .iter()
        .find(|s| s["status"] == "Terminated")
        .unwrap();
    assert_eq!(terminated["count"], 1);

    let ids = |page: serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = page["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["workflow_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let acme = call(
        address,
        "GET",
        "/api/v1/workflows?search_attribute=Customer%3Dacme",
        None,
        None,
    )
    .await;
    assert_eq!(acme.status, 200, "{:?}", acme.json());
    assert_eq!(ids(acme.json()), ["sa-0", "sa-1"]);
    // Repeated: both must hold; a number is an Int, a quoted one a keyword.
    let both = call(
        address,
        "GET",
        "/api/v1/workflows?search_attribute=Customer%3Dacme&search_attribute=Step%3D1",
        None,
        None,
    )
    .await;
    assert_eq!(ids(both.json()), ["sa-1"]);
    let quoted = call(
        address,
        "GET",
        "/api/v1/workflows?search_attribute=Step%3D%221%22",
        None,
        None,
    )
    .await;
    assert!(ids(quoted.json()).is_empty());
    for bad in [
        "search_attribute=Customer",
        "search_attribute=%3Dacme",
        "search_attribute=Customer%3D%5B1%5D",
    ] {
        let answer = call(
            address,
            "GET",
            &format!("/api/v1/workflows?{bad}"),
            None,
            None,
        )
        .await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(answer.code(), "bad_request", "{bad}");
        assert!(
            answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Name=Value"),
            "{bad}"
        );
    }
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_terminate_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    let cancelled = engine
        .start_workflow(GREETER, "c-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .start_workflow(GREETER, "t-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();

    let answer = call(address, "POST", "/api/v1/workflows/c-1/cancel", None, None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json());
    assert_eq!(answer.json()["outcome"], "cancel_requested");
    assert!(cancelled.result().await.is_err());
    assert_eq!(
        engine.describe("c-1").await.unwrap().status,
        steadfast::WorkflowStatus::Cancelled
    );

    // A running workflow cannot be deleted.
    let refused = call(address, "DELETE", "/api/v1/workflows/t-1", None, None).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.code(), "still_running");

    let answer = call(
        address,
        "POST",
        "/api/v1/workflows/t-1/terminate",
        Some(r#"{"reason": "operator says so"}"#),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.json());
    let history = engine.history("t-1").await.unwrap();
    assert!(
        matches!(&history.last().unwrap().kind,
            steadfast::EventKind::WorkflowTerminated { reason } if reason == "operator says so"),
        "{history:?}"
    );

    // Terminating it again: closed.
    let again = call(
        address,
        "POST",
        "/api/v1/workflows/t-1/terminate",
        None,
        None,
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "workflow_closed");

    let deleted = call(address, "DELETE", "/api/v1/workflows/t-1", None, None).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.json());
    let gone = call(address, "GET", "/api/v1/workflows/t-1", None, None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "not_found");
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    engine
        .start_workflow(GREETER, "bad-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let before = engine.history("bad-1").await.unwrap();

    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "POST",
            "/api/v1/workflows/bad-1/signal",
            Some("{not json"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/workflows/bad-1/signal",
            Some(r#"{"input": 1}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/workflows/bad-1/signal",
            Some(r#"{"name": "name", "input": 1, "extra": true}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/workflows/bad-1/signal",
            Some(r#"{"name": ""}"#),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/api/v1/workflows/bad-1/terminate",
            Some(r#"{"reason": 7}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/workflows/bad-1/cancel",
            Some("[1, 2]"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/workflows/nobody/signal",
            Some(r#"{"name": "name"}"#),
            404,
            "not_found",
        ),
        ("GET", "/api/v1/workflows/nobody", None, 404, "not_found"),
        (
            "GET",
            "/api/v1/workflows/nobody/history",
            None,
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/v1/workflows/bad-1?run_id=nope",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/workflows/bad-1?color=red",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/workflows?status=Sleeping",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/workflows?page_size=0",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/workflows?page_size=2&page_size=3",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/workflows?next_page_token=zz",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/workflows?started_after=yesterday",
            None,
            400,
            "bad_request",
        ),
        ("GET", "/api/v1/nothing-here", None, 404, "no_route"),
        (
            "PUT",
            "/api/v1/workflows/bad-1",
            None,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/v1/workflows/bad-1/signal",
            None,
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let answer = call(address, method, path, *body, None).await;
        assert_eq!(
            answer.status,
            *status,
            "{method} {path} {body:?}: {:?}",
            answer.json()
        );
        assert_eq!(answer.code(), *code, "{method} {path} {body:?}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.len() > 20,
            "{method} {path}: message {message:?} says too little"
        );
    }

    // A body over the limit is refused before it is read whole.
    let big = format!(
        r#"{{"name": "name", "input": "{}"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let answer = call(
        address,
        "POST",
        "/api/v1/workflows/bad-1/signal",
        Some(&big),
        None,
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.code(), "payload_too_large");

    // Not HTTP at all: the server answers 400 and closes.
    let garbage = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(b"\x16\x03\x01 hello\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_string()
    })
    .await
    .unwrap();
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage:?}"
    );

    // Nothing malformed changed the run.
    assert_eq!(engine.history("bad-1").await.unwrap(), before);
    let still = call(address, "GET", "/api/v1/workflows/bad-1", None, None).await;
    assert_eq!(still.json()["status"], "Running");
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_token_is_required_off_loopback_and_checked_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;

    let refused = AdminEndpoint::new(engine.clone())
        .bind("0.0.0.0:0".parse().unwrap())
        .serve()
        .await;
    assert!(
        matches!(refused, Err(AdminError::TokenRequired { .. })),
        "{:?}",
        refused.err()
    );
    let short = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .token("abc")
        .serve()
        .await;
    assert!(matches!(short, Err(AdminError::BadToken)));

    let token = "0123456789abcdef0123456789abcdef";
    let server = AdminEndpoint::new(engine.clone())
        .bind("0.0.0.0:0".parse().unwrap())
        .token(token)
        .serve()
        .await
        .expect("with a token any address is allowed");
    let port = tcp(&server).port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    engine
        .start_workflow(GREETER, "tok-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();

    let missing = call(address, "GET", "/api/v1/workflows", None, None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.code(), "unauthorized");
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = call(
        address,
        "GET",
        "/api/v1",
        None,
        Some("0123456789abcdef0123456789abcdeX"),
    )
    .await;
    assert_eq!(wrong.status, 401);
    // Refused writes change nothing, also on routes that do not exist.
    let write = call(
        address,
        "POST",
        "/api/v1/workflows/tok-1/terminate",
        None,
        Some("wrong-token-wrong-token"),
    )
    .await;
    assert_eq!(write.status, 401);
    assert_eq!(
        call(address, "GET", "/nowhere", None, None).await.status,
        401
    );
    assert_eq!(
        engine.describe("tok-1").await.unwrap().status,
        steadfast::WorkflowStatus::Running
    );

    // The page itself holds no data: it is served without the token, and
    // reads through the API with it.
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let asset = call(address, "GET", path, None, None).await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(
            asset.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert!(
            asset
                .header("content-security-policy")
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(!String::from_utf8_lossy(&asset.body).contains("tok-1"));
    }

    let right = call(address, "GET", "/api/v1/workflows", None, Some(token)).await;
    assert_eq!(right.status, 200, "{:?}", right.json());
    assert_eq!(right.json()["executions"][0]["workflow_id"], "tok-1");
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_unix_socket_is_private_and_a_stale_one_is_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let path = dir.path().join("admin.sock");
    // A socket left by a killed process: bound, then its listener gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());

    let server = AdminEndpoint::new(engine.clone())
        .unix_socket(&path)
        .serve()
        .await
        .expect("a stale socket is replaced");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A second endpoint on a live socket is refused.
    let second = AdminEndpoint::new(engine.clone())
        .unix_socket(&path)
        .serve()
        .await;
    assert!(matches!(second, Err(AdminError::Socket { .. })));

    engine
        .start_workflow(GREETER, "unix-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let socket = path.clone();
    let answer = tokio::task::spawn_blocking(move || {
        send_unix(
            &socket,
            &request("GET", "/api/v1/workflows/unix-1", None, None),
        )
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["workflow_id"], "unix-1");

    server.shutdown().await;
    assert!(!path.exists(), "shutdown removes the socket");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_the_engine_shuts_down_requests_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    engine.shutdown().await.unwrap();
    let answer = call(address, "GET", "/api/v1/workflows", None, None).await;
    assert_eq!(answer.status, 503, "{:?}", answer.json());
    assert_eq!(answer.code(), "shut_down");
    server.shutdown().await;
}

#[tokio::test]
async fn pause_unpause_and_reset_through_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = loopback(&engine).await;
    let address = tcp(&server);
    let run = engine
        .start_workflow(GREETER, "p-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let before = engine.history("p-1").await.unwrap();

    // Malformed requests change nothing.
    let cases: &[(&str, Option<&str>, u16, &str)] = &[
        ("pause", Some(r#"{"reason": 3}"#), 400, "bad_request"),
        ("pause", Some(r#"{"why": "x"}"#), 400, "bad_request"),
        ("pause", Some(r#"{"reason": " "}"#), 400, "invalid_argument"),
        ("unpause", Some("not json"), 400, "bad_request"),
        ("reset", None, 400, "bad_request"),
        ("reset", Some(r#"{"reason": "r"}"#), 400, "invalid_argument"),
        (
            "reset",
            Some(r#"{"reason": "r", "event_id": 1, "type": "FirstWorkflowTask"}"#),
            400,
            "invalid_argument",
        ),
        (
            "reset",
            Some(r#"{"reason": "r", "type": "BuildId"}"#),
            400,
            "invalid_argument",
        ),
        (
            "reset",
            Some(r#"{"reason": "r", "event_id": 1, "reapply_exclude": ["Nexus"]}"#),
            400,
            "invalid_argument",
        ),
        (
            "reset",
            Some(r#"{"reason": "r", "event_id": 99}"#),
            400,
            "not_a_reset_point",
        ),
    ];
    for (route, body, status, code) in cases {
        let path = format!("/api/v1/workflows/p-1/{route}");
        let answer = call(address, "POST", &path, *body, None).await;
        assert_eq!(
            answer.status,
            *status,
            "{route} {body:?}: {:?}",
            answer.json()
        );
        assert_eq!(answer.code(), *code, "{route} {body:?}");
    }
    assert_eq!(engine.history("p-1").await.unwrap(), before);
    let unknown = call(
        address,
        "POST",
        "/api/v1/workflows/nobody/pause",
        None,
        None,
    )
    .await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found".into()));

    let paused = call(
        address,
        "POST",
        "/api/v1/workflows/p-1/pause",
        Some(r#"{"reason": "look"}"#),
        None,
    )
    .await;
    assert_eq!(paused.status, 200, "{:?}", paused.json());
    assert_eq!(paused.json()["outcome"], "paused");
    let described = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
    assert_eq!(described.json()["paused"]["kind"], "Requested");
    assert_eq!(described.json()["paused"]["reason"], "look");
    let listed = call(address, "GET", "/api/v1/workflows", None, None).await;
    assert_eq!(listed.json()["executions"][0]["paused"]["reason"], "look");
    // A paused run takes no new update, as in Temporal.
    let update = call(
        address,
        "POST",
        "/api/v1/workflows/p-1/update",
        Some(r#"{"name": "count", "input": 1}"#),
        None,
    )
    .await;
    assert_eq!(
        (update.status, update.code()),
        (409, "workflow_paused".into()),
        "{:?}",
        update.json()
    );
    let unpaused = call(address, "POST", "/api/v1/workflows/p-1/unpause", None, None).await;
    assert_eq!(unpaused.status, 200, "{:?}", unpaused.json());
    let described = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
    assert!(described.json()["paused"].is_null());

    let reset = call(
        address,
        "POST",
        "/api/v1/workflows/p-1/reset",
        Some(r#"{"type": "FirstWorkflowTask", "reason": "again"}"#),
        None,
    )
    .await;
    assert_eq!(reset.status, 200, "{:?}", reset.json());
    let new_run = reset.json()["run_id"].as_str().unwrap().to_string();
    let described = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
    assert_eq!(described.json()["run_id"], new_run.as_str());
    assert_eq!(
        described.json()["reset_from"],
        run.run_id().to_string().as_str()
    );
    let old = call(
        address,
        "GET",
        &format!("/api/v1/workflows/p-1?run_id={}", run.run_id()),
        None,
        None,
    )
    .await;
    assert_eq!(old.json()["status"], "Terminated");
    assert_eq!(old.json()["reset_to"], new_run.as_str());

    engine.signal("p-1", NAME, "Ada".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), "Hi, Ada!");
    let closed = call(address, "POST", "/api/v1/workflows/p-1/pause", None, None).await;
    assert_eq!(
        (closed.status, closed.code()),
        (409, "workflow_closed".into())
    );
    // A closed run is reset too: it stays closed, a new run starts.
    let reset = call(
        address,
        "POST",
        "/api/v1/workflows/p-1/reset",
        Some(r#"{"type": "FirstWorkflowTask", "reason": "once more", "reapply_exclude": ["Signal"]}"#),
        None,
    )
    .await;
    assert_eq!(reset.status, 200, "{:?}", reset.json());
    let again = reset.json()["run_id"].as_str().unwrap().to_string();
    let described = call(address, "GET", "/api/v1/workflows/p-1", None, None).await;
    assert_eq!(described.json()["run_id"], again.as_str());
    assert_eq!(described.json()["status"], "Running");
    assert_eq!(described.json()["reset_from"], new_run.as_str());
    let completed = call(
        address,
        "GET",
        &format!("/api/v1/workflows/p-1?run_id={new_run}"),
        None,
        None,
    )
    .await;
    assert_eq!(completed.json()["status"], "Completed");
    assert_eq!(completed.json()["reset_to"], again.as_str());
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}
