//! Taking a new model set into service: on change of the directory and on the admin call,
//! under load, without a failed request; a set that cannot be served is refused.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use touchpoint::startup::Application;

use crate::helpers::{purchase, repo_path, spawn_app, test_settings};

fn copy_models(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(repo_path("models")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Rewrites the manifest with another version, atomically (as `train` does).
fn set_version(dir: &Path, version: &str) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["version"] = version.into();
    let tmp = dir.join(".manifest.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[actix_web::test]
async fn a_new_model_set_goes_into_service_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    copy_models(&live);
    let mut settings = test_settings(None);
    settings.models.dir = live.clone();
    settings.models.watch = true;
    let app = Rc::new(spawn_app(settings).await);
    for c in 0..10 {
        let (status, _) = app
            .post_json(
                "/v1/events",
                &purchase(
                    &format!("p{c}"),
                    &format!("c-{c}"),
                    "2026-10-01T10:00:00Z",
                    20.0,
                ),
            )
            .await;
        assert_eq!(status, 202);
    }

    let stop = Rc::new(Cell::new(false));
    let failures = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = Rc::new(RefCell::new(BTreeSet::<String>::new()));
    let served = Rc::new(Cell::new(0usize));
    let mut clients = Vec::new();
    for w in 0..4 {
        let (app, stop, failures, seen, served) = (
            app.clone(),
            stop.clone(),
            failures.clone(),
            seen.clone(),
            served.clone(),
        );
        clients.push(actix_web::rt::spawn(async move {
            let mut i = 0;
            while !stop.get() {
                i += 1;
                let path = if i % 3 == 0 {
                    "/v1/models".to_owned()
                } else {
                    format!("/v1/customers/c-{}", (w + i) % 10)
                };
                let (status, body) = app.get(&path).await;
                if status != 200 {
                    failures
                        .borrow_mut()
                        .push(format!("{path}: {status} {body}"));
                } else {
                    let v = body
                        .get("model_version")
                        .or_else(|| body.get("version"))
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    seen.borrow_mut().insert(v);
                    served.set(served.get() + 1);
                }
            }
        }));
    }

    let current = || async {
        let (_, m) = app.get("/v1/models").await;
        m["version"].as_str().unwrap_or_default().to_owned()
    };
    for round in 0..6 {
        let version = format!("reload-test-{round}");
        set_version(&live, &version);
        if round % 2 == 1 {
            // The admin call takes it at once.
            let (status, body) = app.post_raw("/v1/admin/models/reload", String::new()).await;
            assert_eq!(
                (status, body["version"].as_str()),
                (200, Some(version.as_str()))
            );
        }
        // The watcher takes it within moments.
        let started = Instant::now();
        while current().await != version {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{version} never went into service"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // A set still being written (an artifact that does not match the manifest) is refused
    // and the set in service stays.
    std::fs::write(live.join("propensity.json"), b"{ \"half\": ").unwrap();
    let (status, body) = app.post_raw("/v1/admin/models/reload", String::new()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_model_set");
    actix_web::rt::time::sleep(Duration::from_millis(600)).await; // the watcher also tried
    assert_eq!(current().await, "reload-test-5");

    stop.set(true);
    for c in clients {
        c.await.unwrap();
    }
    assert!(failures.borrow().is_empty(), "{:?}", failures.borrow());
    assert!(
        served.get() > 100,
        "only {} requests were served",
        served.get()
    );
    let versions = seen.borrow().len();
    assert!(versions >= 3, "requests saw only {:?}", seen.borrow());
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("touchpoint_model_reloads_total{result=\"error\"}")
    );
}

#[actix_web::test]
async fn the_service_refuses_a_model_set_whose_features_it_cannot_build() {
    let dir = tempfile::tempdir().unwrap();
    copy_models(dir.path());
    let path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["feature_schemas"]["response"]["version"] = 99.into();
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let mut settings = test_settings(None);
    settings.models.dir = dir.path().to_owned();
    let err = Application::build(settings).await.err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("version 99"), "{message}");
    assert!(message.contains("retrain"), "{message}");

    // An unknown feature kind is refused the same way.
    manifest["feature_schemas"]["response"]["version"] = 1.into();
    manifest["feature_schemas"]["response"]["specs"][0] =
        serde_json::json!({"kind": "zodiac_sign"});
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let mut settings = test_settings(None);
    settings.models.dir = dir.path().to_owned();
    let err = Application::build(settings).await.err().expect("refused");
    assert!(err.to_string().contains("zodiac_sign"), "{err}");
}
