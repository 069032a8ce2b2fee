//! One `Utils` shared by 8 threads, 2,000 calls each, every result checked
//! against the same logic called natively.

use std::sync::Arc;

use skyutils::{Number, Policy, Utils};
use skyutils_guest::text;

use crate::common;

#[test]
fn eight_threads_share_one_utils() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("app.log");
    std::fs::write(
        &log,
        (0..500).map(|i| format!("line {i}\n")).collect::<String>(),
    )
    .unwrap();
    let facts = Arc::new(common::FakeFacts::new(Some(&serde_json::json!({
        "os_cpu_count": 8, "pids_alive": [1, 42]
    }))));
    let policy = Policy {
        env_override: Some(vec![]),
        ..Policy::default()
    };
    let utils = Arc::new(Utils::new(policy).unwrap().with_facts(facts));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let utils = utils.clone();
            let log = log.to_str().unwrap().to_string();
            std::thread::spawn(move || {
                for i in 0..2000u64 {
                    let k = t * 10_000 + i;
                    match k % 5 {
                        0 => {
                            let hex = format!(
                                "{:032x}",
                                u128::from(k).wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835)
                            );
                            assert_eq!(
                                utils.base36_encode(&hex).unwrap(),
                                text::base36_encode(&hex).unwrap()
                            );
                        }
                        1 => {
                            let x = k as f64 / 7.0;
                            let want =
                                text::format_float(text::Number::Float(x), (k % 4) as i64).unwrap();
                            assert_eq!(
                                utils
                                    .format_float(Number::Float(x), (k % 4) as i64)
                                    .unwrap(),
                                want
                            );
                        }
                        2 => {
                            let s = format!("thread {t} call {i} with some words to cut");
                            let want = text::truncate_long_string(&s, (k % 30) as i64, k % 2 == 0);
                            assert_eq!(
                                utils
                                    .truncate_long_string(&s, (k % 30) as i64, k % 2 == 0)
                                    .unwrap(),
                                want
                            );
                        }
                        3 => {
                            let cloud = (k % 2 == 0).then_some("kubernetes");
                            let want = if cloud.is_some() { 28 } else { 7 };
                            assert_eq!(utils.get_parallel_threads(cloud).unwrap(), want);
                            assert_eq!(
                                utils
                                    .is_process_alive(if k % 3 == 0 { 42 } else { 43 })
                                    .unwrap(),
                                k % 3 == 0
                            );
                        }
                        _ => {
                            let n = (k % 7) as usize + 1;
                            let lines = utils.read_last_n_lines(&log, n as i64).unwrap();
                            assert_eq!(lines.len(), n);
                            assert_eq!(lines.last().unwrap(), "line 499");
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a worker thread failed");
    }
}
