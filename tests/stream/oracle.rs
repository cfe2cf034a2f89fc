//! The scheduler against a naive oracle (STYLE §3.10 item 3): after any
//! sequence of demands, completions and failures, each request must be
//! the head of "every queued block sorted by (class, stored offset)",
//! extended with the next blocks of that list while they are the same
//! class, the next id, and fit in the class's request size.

use proptest::prelude::*;
use sft::FeatureBlock;
use sft::stream::{Priority, Scheduler, SchedulerLimits};

#[derive(Debug, Clone)]
enum Op {
    Demand(u32),
    Poll,
    Complete(usize),
    Fail(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u32..40).prop_map(Op::Demand),
        3 => Just(Op::Poll),
        2 => (0usize..8).prop_map(Op::Complete),
        1 => (0usize..8).prop_map(Op::Fail),
    ]
}

/// The naive model: per block, its class while queued.
#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Absent,
    Queued(Priority),
    InFlight(Priority),
    Present,
}

/// The oracle: sort queued blocks by (class, offset); take the head and
/// the following same-class, next-id blocks that fit in the cap.
fn expected(st: &[St], off: &[u64], len: &[u64], cap: impl Fn(Priority) -> u64) -> Vec<u32> {
    let mut q: Vec<(Priority, u64, u32)> = (0..st.len())
        .filter_map(|i| match st[i] {
            St::Queued(c) => Some((c, off[i], i as u32)),
            _ => None,
        })
        .collect();
    q.sort();
    let Some(&(class, _, first)) = q.first() else {
        return Vec::new();
    };
    let mut out = vec![first];
    let mut total = len[first as usize];
    for &(c, _, id) in &q[1..] {
        if c != class || id != out[out.len() - 1] + 1 || total + len[id as usize] > cap(class) {
            break;
        }
        total += len[id as usize];
        out.push(id);
    }
    out
}

proptest! {
    #[test]
    fn scheduler_matches_naive_oracle(
        lens in proptest::collection::vec(1u64..6, 1..40),
        fb1_frac in 0usize..=40,
        cap in 1u64..16,
        fb1_cap in 1u64..40,
        max_req in 1u32..4,
        launch_only in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..150),
    ) {
        let n = lens.len();
        let fb1 = fb1_frac.min(n);
        let mut off = Vec::with_capacity(n);
        let mut at = 500u64;
        for l in &lens {
            off.push(at);
            at += l;
        }
        let fb = |i: usize| if i < fb1 { FeatureBlock::Fb1 } else { FeatureBlock::Fb2 };
        let limits = SchedulerLimits {
            max_request_bytes: cap,
            fb1_request_bytes: fb1_cap,
            max_in_flight_requests: max_req,
            max_in_flight_bytes: u64::MAX,
        };
        let mut s = Scheduler::new((0..n).map(|i| (off[i], lens[i] as u32, fb(i))), limits);
        s.queue_all(!launch_only);
        let mut st: Vec<St> = (0..n)
            .map(|i| match fb(i) {
                FeatureBlock::Fb1 => St::Queued(Priority::Fb1),
                FeatureBlock::Fb2 if !launch_only => St::Queued(Priority::Fb2),
                FeatureBlock::Fb2 => St::Absent,
            })
            .collect();
        let mut in_flight: Vec<(Vec<u32>, u64)> = Vec::new();
        let cap_of = |c: Priority| if c == Priority::Fb1 { fb1_cap } else { cap };
        let mut served = 0usize;
        for op in ops {
            match op {
                Op::Demand(id) => {
                    let id = id as usize % n;
                    let queued_now = s.demand(id as u32);
                    let model = match st[id] {
                        St::Absent | St::Queued(_) => { st[id] = St::Queued(Priority::Demand); true }
                        St::InFlight(_) => { st[id] = St::InFlight(Priority::Demand); false }
                        St::Present => false,
                    };
                    prop_assert_eq!(queued_now, model);
                }
                Op::Poll => {
                    let want = expected(&st, &off, &lens, cap_of);
                    match s.poll() {
                        Some(b) => {
                            prop_assert!(in_flight.len() < max_req as usize);
                            let got: Vec<u32> = b.blocks.clone().collect();
                            prop_assert_eq!(&got, &want);
                            let class = match st[got[0] as usize] { St::Queued(c) => c, _ => unreachable!() };
                            prop_assert_eq!(b.priority, class);
                            prop_assert_eq!(b.range.clone(), off[got[0] as usize]..off[*got.last().unwrap() as usize] + lens[*got.last().unwrap() as usize]);
                            for &id in &got { st[id as usize] = St::InFlight(class); }
                            in_flight.push((got, b.range.end - b.range.start));
                            served += 1;
                        }
                        None => prop_assert!(want.is_empty() || in_flight.len() >= max_req as usize),
                    }
                }
                Op::Complete(k) | Op::Fail(k) if !in_flight.is_empty() => {
                    let (ids, bytes) = in_flight.remove(k % in_flight.len());
                    s.request_done(bytes);
                    for id in ids {
                        if matches!(op, Op::Complete(_)) {
                            s.block_present(id);
                            st[id as usize] = St::Present;
                        } else {
                            s.block_failed(id, u32::MAX);
                            let St::InFlight(c) = st[id as usize] else { unreachable!() };
                            st[id as usize] = St::Queued(c);
                        }
                    }
                }
                _ => {}
            }
        }
        let _ = served;
        prop_assert_eq!(s.present_blocks() as usize, st.iter().filter(|x| **x == St::Present).count());
    }
}
