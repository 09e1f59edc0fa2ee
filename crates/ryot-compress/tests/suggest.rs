//! `suggest` on a small seeded synthetic set: the table spans the
//! candidates, the pick obeys the goal, and bad goals are typed errors.

use ryot_compress::Error;
use ryot_compress::suggest::{Goal, Options, suggest};

mod common;
use common::data;

fn opts() -> Options {
    Options {
        queries: 40,
        base_rows: 1500,
        train_rows: 800,
        ..Options::default()
    }
}

#[test]
fn picks_follow_the_goal_and_progress_is_reported() {
    let x = data(1600, 32, 1);
    let mut steps = 0;
    let s = suggest(&x, None, Goal::Budget(8), &opts(), &mut |_, _, _| {
        steps += 1;
    })
    .unwrap();
    assert!(s.held_out && s.queries == 40 && s.base_rows == 1500);
    assert_eq!(steps, s.rows.len() + 1);
    assert!(s.rows.len() >= 6, "{:?}", s.rows);
    let min_ratio = s.rows.iter().map(|r| r.ratio).fold(f64::MAX, f64::min);
    let max_ratio = s.rows.iter().map(|r| r.ratio).fold(0.0, f64::max);
    assert!(min_ratio <= 4.0 && max_ratio >= 64.0);
    // int8 is near exact; rescoring never hurts much.
    let int8 = s.rows.iter().find(|r| r.pipeline == "int8").unwrap();
    assert!(int8.recall_at_10 > 0.9, "{int8:?}");
    for r in &s.rows {
        assert!(r.recall_at_10_rescored + 0.02 >= r.recall_at_10, "{r:?}");
    }
    let pick = &s.rows[s.pick.unwrap()];
    assert!(pick.bytes_per_vector <= 8);
    for r in s.rows.iter().filter(|r| r.bytes_per_vector <= 8) {
        assert!(r.recall_at_10 <= pick.recall_at_10);
    }
    assert!(s.render().contains("recommended"));

    // A target: the pick reaches it with the fewest bytes.
    let s = suggest(&x, None, Goal::Recall(0.5), &opts(), &mut |_, _, _| {})
        .unwrap();
    let pick = &s.rows[s.pick.unwrap()];
    assert!(pick.recall_at_10 >= 0.5);
    for r in &s.rows {
        if r.recall_at_10 >= 0.5 {
            assert!(r.bytes_per_vector >= pick.bytes_per_vector);
        }
    }
    // Given queries are used as they are.
    let q = data(7, 32, 2);
    let s =
        suggest(&x, Some(&q), Goal::Recall(1.0), &opts(), &mut |_, _, _| {})
            .unwrap();
    assert!(!s.held_out && s.queries == 7);
}

#[test]
fn bad_goals_and_inputs_are_typed_errors() {
    let x = data(100, 8, 3);
    let mut nop = |_: usize, _: usize, _: &str| {};
    for g in [Goal::Budget(0), Goal::Recall(0.0), Goal::Recall(1.2)] {
        assert!(matches!(
            suggest(&x, None, g, &opts(), &mut nop),
            Err(Error::Invalid(_))
        ));
    }
    assert!(matches!(
        suggest(&data(4, 8, 3), None, Goal::Budget(8), &opts(), &mut nop),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        suggest(&x, Some(&data(3, 9, 1)), Goal::Budget(8), &opts(), &mut nop),
        Err(Error::Shape(_))
    ));
}
