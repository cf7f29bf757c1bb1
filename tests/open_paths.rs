//! Promise: opening a path that cannot hold the file says what is wrong
//! with the path the caller gave (no such directory, a file where a
//! directory should be, no write permission), never a name of the engine's
//! own temporary files, and never "not a steadfast database".
//!
//! The permission case needs a place this process may not write: a
//! read-only directory when not running as root, else a read-only tmpfs
//! the test mounts (root writes to read-only directories); when neither is
//! possible it prints that it was skipped and passes.

mod support;

use std::path::Path;
use std::process::Command;

use steadfast::{Engine, OpenError};
use support::temp_db;

/// No engine error may name the temporary file a new file is made under.
fn assert_names_only_the_path(err: &OpenError, path: &Path) {
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(!text.contains("creating-"), "{text}");
    assert!(!text.contains("steadfast database"), "{text}");
}

#[tokio::test]
async fn a_missing_directory_is_named() {
    let db = temp_db();
    let path = db.dir.path().join("no-such-dir").join("app.steadfast");

    let err = Engine::builder().open(&path).await.unwrap_err();

    match &err {
        OpenError::NoSuchDirectory { path: p, directory } => {
            assert_eq!(p, &path);
            assert_eq!(directory, &db.dir.path().join("no-such-dir"));
        }
        other => panic!("expected NoSuchDirectory, got {other:?}"),
    }
    assert_names_only_the_path(&err, &path);
    assert!(!db.dir.path().join("no-such-dir").exists());
}

#[tokio::test]
async fn a_file_where_a_directory_should_be_is_named() {
    let db = temp_db();
    let file = db.dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let path = file.join("deeper").join("app.steadfast");

    let err = Engine::builder().open(&path).await.unwrap_err();

    match &err {
        OpenError::NotADirectory {
            path: p,
            not_a_directory,
        } => {
            assert_eq!(p, &path);
            assert_eq!(not_a_directory, &file);
        }
        other => panic!("expected NotADirectory, got {other:?}"),
    }
    assert_names_only_the_path(&err, &path);
}

/// A read-only place: a read-only directory for a user, a read-only tmpfs
/// for root. The tmpfs is unmounted on drop.
struct ReadOnly {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl ReadOnly {
    /// Makes one, with `setup` run while it is still writable.
    fn new(setup: impl FnOnce(&Path)) -> Result<ReadOnly, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            setup(dir.path());
            let mut permissions = std::fs::metadata(dir.path())
                .map_err(|e| e.to_string())?
                .permissions();
            permissions.set_readonly(true);
            std::fs::set_permissions(dir.path(), permissions).map_err(|e| e.to_string())?;
            return Ok(ReadOnly {
                dir,
                mounted: false,
            });
        }
        let target = dir.path().to_path_buf();
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("mount")
                .args(args)
                .arg(&target)
                .output()
                .map_err(|e| format!("mount could not run: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "mount failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        run(&["-t", "tmpfs", "-o", "size=16m", "tmpfs"])?;
        let place = ReadOnly { dir, mounted: true };
        setup(place.dir.path());
        run(&["-o", "remount,ro"])?;
        Ok(place)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        } else if let Ok(metadata) = std::fs::metadata(self.dir.path()) {
            let mut permissions = metadata.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            permissions.set_readonly(false);
            let _ = std::fs::set_permissions(self.dir.path(), permissions);
        }
    }
}

#[tokio::test]
async fn a_directory_without_write_permission_is_named() {
    let place = match ReadOnly::new(|_| {}) {
        Ok(place) => place,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let path = place.dir.path().join("app.steadfast");

    let err = Engine::builder().open(&path).await.unwrap_err();

    match &err {
        OpenError::NotWritable {
            path: p, place: at, ..
        } => {
            assert_eq!(p, &path);
            assert_eq!(at, place.dir.path());
        }
        other => panic!("expected NotWritable, got {other:?}"),
    }
    assert_names_only_the_path(&err, &path);
}

/// A plain test with its own runtime: the file is made inside `setup`,
/// before the place turns read-only.
#[test]
fn an_existing_file_without_write_permission_is_named() {
    let name = "app.steadfast";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let place = match ReadOnly::new(|dir| {
        let path = dir.join(name);
        runtime.block_on(async {
            let engine = Engine::builder().open(&path).await.unwrap();
            engine.shutdown().await.unwrap();
        });
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            permissions.set_readonly(true);
            std::fs::set_permissions(&path, permissions).unwrap();
        }
    }) {
        Ok(place) => place,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let path = place.dir.path().join(name);

    let err = runtime.block_on(Engine::builder().open(&path)).unwrap_err();

    match &err {
        OpenError::NotWritable { path: p, .. } => assert_eq!(p, &path),
        other => panic!("expected NotWritable, got {other:?}"),
    }
    assert_names_only_the_path(&err, &path);
}
