//! Un-fsynced writes vanish on crash; fsynced ones survive.

use std::time::Duration;

use sagasim::sim::{simulate, FaultPlan, World};
use sagasim::trace::TraceMode;

#[test]
fn crash_loses_exactly_the_unsynced_writes() {
    let (read_after, _) = simulate(1, TraceMode::Full, || async {
        let world = World::new(1, FaultPlan::default(), &["n"], Duration::from_millis(5));
        let disk = world.disk::<&'static str>("n");
        world.start_node("n", std::future::pending::<()>);
        disk.write("a");
        disk.fsync().await;
        disk.write("b");
        assert_eq!(
            disk.read(),
            vec!["a", "b"],
            "a running process reads its writes"
        );
        world.crash("n");
        let after_crash = disk.read();
        world.restart("n");
        disk.write("c");
        disk.fsync().await;
        (after_crash, disk.read(), disk.durable())
    });
    let (after_crash, after_restart, durable) = read_after;
    assert_eq!(after_crash, vec!["a"]);
    assert_eq!(after_restart, vec!["a", "c"]);
    assert!(
        durable[0].synced_at_us >= 5_000,
        "fsync takes the disk's latency"
    );
    assert!(durable[1].synced_at_us > durable[0].synced_at_us);
}

#[test]
fn a_crash_during_fsync_makes_nothing_durable() {
    let (out, _) = simulate(2, TraceMode::Full, || async {
        let world = World::new(2, FaultPlan::default(), &["n"], Duration::from_millis(10));
        let disk = world.disk::<u32>("n");
        world.start_node("n", std::future::pending::<()>);
        disk.write(1);
        let d = disk.clone();
        // The fsync runs on the supervisor, so the crash does not cancel it:
        // the disk itself must refuse to complete it.
        let syncing = tokio::spawn(async move { d.fsync().await });
        tokio::time::sleep(Duration::from_millis(3)).await;
        world.crash("n");
        syncing.await.unwrap();
        disk.read()
    });
    assert!(out.is_empty());
}

#[test]
fn node_memory_is_lost_on_crash_and_init_runs_again() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let boots = Arc::new(AtomicU32::new(0));
    let b = boots.clone();
    simulate(3, TraceMode::Full, move || async move {
        let world = World::new(3, FaultPlan::default(), &["n"], Duration::from_millis(1));
        let b2 = b.clone();
        world.start_node("n", move || {
            b2.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        world.crash("n");
        assert!(!world.is_up("n"));
        world.restart("n");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(world.is_up("n"));
    });
    assert_eq!(boots.load(Ordering::SeqCst), 2);
}

#[test]
fn node_clocks_carry_their_skew() {
    use sagasim::sim::clock::{ClockSkew, EPOCH_MS};
    let plan = FaultPlan {
        clocks: vec![ClockSkew {
            node: "n".into(),
            offset_ms: 90_000,
            drift_ppm: 0,
            jump: None,
        }],
        ..FaultPlan::default()
    };
    let (readings, _) = simulate(4, TraceMode::Full, move || async move {
        let world = World::new(4, plan, &["n", "m"], Duration::from_millis(1));
        tokio::time::sleep(Duration::from_secs(10)).await;
        (world.clock_ms("n"), world.clock_ms("m"))
    });
    assert_eq!(readings.1, EPOCH_MS + 10_000);
    assert_eq!(readings.0, EPOCH_MS + 100_000);
}
