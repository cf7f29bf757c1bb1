//! The schedule routes through HTTP: create, list, describe, pause,
//! unpause, trigger, backfill and delete, each answered as documented;
//! bad requests and unknown schedules get a JSON error and change nothing;
//! a token guards them as it guards every route.

mod support;

use std::net::SocketAddr;

use steadfast_admin::{AdminAddress, AdminEndpoint};
use support::*;

fn tcp(server: &steadfast_admin::AdminServer) -> SocketAddr {
    match server.address() {
        AdminAddress::Tcp(address) => *address,
        other => panic!("not TCP: {other:?}"),
    }
}

const CREATE: &str = r#"{
    "workflow_type": "Greeter",
    "workflow_id": "greet-hourly",
    "input": "Hello",
    "cron": ["0 * * * *"],
    "time_zone": "Asia/Kolkata",
    "overlap": "buffer-one",
    "catchup_window": "1h",
    "pause_on_failure": true,
    "note": "made by a test"
}"#;

#[tokio::test]
async fn every_schedule_route_answers_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .serve()
        .await
        .unwrap();
    let address = tcp(&server);

    let created = call(
        address,
        "POST",
        "/api/v1/schedules/hourly",
        Some(CREATE),
        None,
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.json());
    assert_eq!(created.json()["outcome"], "created");
    let again = call(
        address,
        "POST",
        "/api/v1/schedules/hourly",
        Some(CREATE),
        None,
    )
    .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "schedule_already_running".into())
    );

    let listed = call(address, "GET", "/api/v1/schedules", None, None).await;
    assert_eq!(listed.status, 200);
    let list = listed.json();
    assert_eq!(list["schedules"][0]["schedule_id"], "hourly");
    assert_eq!(list["schedules"][0]["workflow_type"], "Greeter");
    // Kolkata's whole hours are at half past in UTC.
    let next = list["schedules"][0]["next_action_times"][0]
        .as_str()
        .unwrap();
    assert!(next.contains(":30:00"), "{next}");

    let described = call(address, "GET", "/api/v1/schedules/hourly", None, None).await;
    assert_eq!(described.status, 200);
    let d = described.json();
    assert_eq!(d["cron"][0], "0 * * * *");
    assert_eq!(d["overlap"], "buffer-one");
    assert_eq!(d["catchup_window"], "1h");
    assert_eq!(d["pause_on_failure"], true);
    assert_eq!(d["note"], "made by a test");
    assert_eq!(d["input"], "Hello");
    assert_eq!(d["info"]["next_action_times"].as_array().unwrap().len(), 5);

    let paused = call(
        address,
        "POST",
        "/api/v1/schedules/hourly/pause",
        Some(r#"{"note": "quiet hours"}"#),
        None,
    )
    .await;
    assert_eq!(paused.json()["outcome"], "paused");
    let d = call(address, "GET", "/api/v1/schedules/hourly", None, None)
        .await
        .json();
    assert_eq!(
        (d["paused"].as_bool(), d["note"].as_str()),
        (Some(true), Some("quiet hours"))
    );
    assert!(
        d["info"]["next_action_times"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A trigger acts even while paused: its workflow runs (and waits for a signal).
    let triggered = call(
        address,
        "POST",
        "/api/v1/schedules/hourly/trigger",
        None,
        None,
    )
    .await;
    assert_eq!(triggered.status, 200, "{:?}", triggered.json());
    eventually("the triggered action", || async {
        let d = call(address, "GET", "/api/v1/schedules/hourly", None, None)
            .await
            .json();
        d["info"]["action_count"] == 1
    })
    .await;
    let d = call(address, "GET", "/api/v1/schedules/hourly", None, None)
        .await
        .json();
    let started = d["info"]["recent_actions"][0]["workflow_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(started.starts_with("greet-hourly-"), "{started}");
    let run = call(
        address,
        "GET",
        &format!("/api/v1/workflows/{started}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        run.json()["search_attributes"]["TemporalScheduledById"]["value"],
        "hourly"
    );

    let backfilled = call(
        address,
        "POST",
        "/api/v1/schedules/hourly/backfill",
        Some(r#"{"start_at": "2026-01-01T00:00:00Z", "end_at": "2026-01-01T02:30:00Z", "overlap": "allow-all"}"#),
        None,
    )
    .await;
    assert_eq!(backfilled.status, 200, "{:?}", backfilled.json());
    eventually("the backfilled actions", || async {
        let d = call(address, "GET", "/api/v1/schedules/hourly", None, None)
            .await
            .json();
        d["info"]["action_count"] == 4
    })
    .await;

    let unpaused = call(
        address,
        "POST",
        "/api/v1/schedules/hourly/unpause",
        None,
        None,
    )
    .await;
    assert_eq!(unpaused.json()["outcome"], "unpaused");

    // An update replaces the whole configuration; the progress stays.
    const UPDATE: &str = r#"{
        "workflow_type": "Greeter",
        "workflow_id": "greet-daily",
        "input": "Hi",
        "cron": ["30 6 * * *"],
        "overlap": "allow-all",
        "paused": true,
        "note": "updated by a test"
    }"#;
    let updated = call(
        address,
        "PUT",
        "/api/v1/schedules/hourly",
        Some(UPDATE),
        None,
    )
    .await;
    assert_eq!(updated.status, 200, "{:?}", updated.json());
    assert_eq!(updated.json()["outcome"], "updated");
    let d = call(address, "GET", "/api/v1/schedules/hourly", None, None)
        .await
        .json();
    assert_eq!(d["cron"][0], "30 6 * * *");
    assert_eq!(d["overlap"], "allow-all");
    assert_eq!(d["workflow_id"], "greet-daily");
    assert_eq!(d["input"], "Hi");
    assert_eq!(
        (d["paused"].as_bool(), d["note"].as_str()),
        (Some(true), Some("updated by a test"))
    );
    assert_eq!(d["info"]["action_count"], 4, "the progress stays");
    // A body that does not parse changes nothing; an unknown ID is a 404.
    let bad = call(
        address,
        "PUT",
        "/api/v1/schedules/hourly",
        Some(r#"{"workflow_type": "Greeter", "cron": ["not cron"]}"#),
        None,
    )
    .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_spec".into()));
    let after = call(address, "GET", "/api/v1/schedules/hourly", None, None)
        .await
        .json();
    assert_eq!(after["cron"], d["cron"]);
    let unknown = call(
        address,
        "PUT",
        "/api/v1/schedules/nobody",
        Some(UPDATE),
        None,
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "schedule_not_found".into())
    );
    let deleted = call(address, "DELETE", "/api/v1/schedules/hourly", None, None).await;
    assert_eq!(deleted.json()["outcome"], "deleted");
    let gone = call(address, "GET", "/api/v1/schedules/hourly", None, None).await;
    assert_eq!(
        (gone.status, gone.code()),
        (404, "schedule_not_found".into())
    );
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_schedule_requests_get_json_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let server = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .serve()
        .await
        .unwrap();
    let address = tcp(&server);
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "POST",
            "/api/v1/schedules/bad",
            Some(r#"{"workflow_type": "Greeter", "cron": ["61 * * * *"]}"#),
            400,
            "invalid_spec",
        ),
        (
            "POST",
            "/api/v1/schedules/bad",
            Some(r#"{"workflow_type": "Greeter", "intervals": [{"every": "soon"}]}"#),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/api/v1/schedules/bad",
            Some(r#"{"workflow_type": "Greeter", "cron": ["* * * * *"], "overlap": "sometimes"}"#),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/api/v1/schedules/bad",
            Some(r#"{"workflow_type": "Greeter", "cron": ["* * * * *"], "colour": "red"}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/schedules/bad",
            Some(r#"{"workflow_type": "Nobody", "cron": ["* * * * *"]}"#),
            409,
            "unknown_workflow_type",
        ),
        (
            "GET",
            "/api/v1/schedules/missing",
            None,
            404,
            "schedule_not_found",
        ),
        (
            "POST",
            "/api/v1/schedules/missing/pause",
            None,
            404,
            "schedule_not_found",
        ),
        (
            "POST",
            "/api/v1/schedules/missing/trigger",
            None,
            404,
            "schedule_not_found",
        ),
        (
            "DELETE",
            "/api/v1/schedules/missing",
            None,
            404,
            "schedule_not_found",
        ),
        (
            "POST",
            "/api/v1/schedules/missing/backfill",
            Some(r#"{"start_at": "yesterday", "end_at": "2026-01-01T00:00:00Z"}"#),
            400,
            "invalid_argument",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let answer = call(address, method, path, *body, None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (*status, code.to_string()),
            "{method} {path} {body:?}: {:?}",
            answer.json()
        );
    }
    let listed = call(address, "GET", "/api/v1/schedules", None, None).await;
    assert!(listed.json()["schedules"].as_array().unwrap().is_empty());
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedule_routes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let token = "a-token-of-enough-length-1234";
    let server = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .token(token)
        .serve()
        .await
        .unwrap();
    let address = tcp(&server);
    let refused = call(
        address,
        "POST",
        "/api/v1/schedules/hourly",
        Some(CREATE),
        None,
    )
    .await;
    assert_eq!(refused.status, 401);
    let listed = call(address, "GET", "/api/v1/schedules", None, Some(token)).await;
    assert!(listed.json()["schedules"].as_array().unwrap().is_empty());
    let created = call(
        address,
        "POST",
        "/api/v1/schedules/hourly",
        Some(CREATE),
        Some(token),
    )
    .await;
    assert_eq!(created.status, 200);
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}
