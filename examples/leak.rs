use std::time::Duration;
fn rss() -> f64 {
    sagasim::bench::peak_rss_mib()
}
fn main() {
    let which = std::env::args().nth(1).unwrap();
    let s = sagasim::scenario::Scenario::load("hotel-checkout", &sagasim::scenario::default_dir())
        .unwrap();
    for round in 0..4 {
        for seed in 0..1000u64 {
            match which.as_str() {
                "empty" => {
                    sagasim::bench::empty_world_seed(&s, seed, 78);
                }
                "pending" => {
                    sagasim::sim::simulate(
                        seed,
                        sagasim::trace::TraceMode::HashOnly,
                        || async move {
                            let world = sagasim::sim::World::new(
                                seed,
                                Default::default(),
                                &["a", "b"],
                                Duration::from_millis(1),
                            );
                            world.start_node("a", std::future::pending::<()>);
                            world.start_node("b", || async {
                                loop {
                                    tokio::time::sleep(Duration::from_secs(1)).await
                                }
                            });
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        },
                    );
                }
                "bare" => {
                    let rt = madsim::runtime::Runtime::with_seed_and_config(
                        seed,
                        madsim::Config::default(),
                    );
                    rt.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
                }
                _ => {
                    sagasim::harness::fuzz_seed(&s, seed);
                }
            }
        }
        println!("{which} round {round}: {:.1} MiB", rss());
    }
}
