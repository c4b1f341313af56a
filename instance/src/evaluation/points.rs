//! The point formula of the real PéK (korok, pek-next), as pure functions.
//!
//! **A member's points on one scoreboard** (one group, one semester):
//! 1. each point request is clamped to `[0, guideline.maxPerMember]`;
//! 2. `work = min(Σ WORK, 30)`, `resp = min(Σ RESPONSIBILITY, 20)`;
//! 3. `s = work + resp`; `s` of 1 or 2 counts **0**, 3 or 4 counts **5**, otherwise
//!    `min(s, 50)`.
//!
//! **A person's semester points**: the member points of the accepted, latest-version
//! scoreboards of the semester and the one before it, summed per group (`g_k`), give
//! `min(sqrt(Σ g_k²), maxPointsPerSemester)`. The same formula runs on the hub over all
//! groups of all realms.
//!
//! The exact value is kept as a float; the reported figure is truncated (not rounded) to
//! two decimals, computed with integers (`⌊100·√S⌋ = ⌊√(10000·S)⌋`) so no float error
//! can push 49.999… below 50.00.

use serde::Serialize;

use super::guideline::Category;

/// WORK points count up to this much on one scoreboard.
pub const WORK_CAP: i64 = 30;
/// RESPONSIBILITY points count up to this much on one scoreboard.
pub const RESPONSIBILITY_CAP: i64 = 20;
/// A member's points on one scoreboard never exceed this.
pub const MEMBER_CAP: i64 = 50;

/// One point request as the formula sees it.
#[derive(Debug, Clone, Copy)]
pub struct Requested {
    pub category: Category,
    pub points: i64,
    /// The guideline's maximum per member.
    pub max_per_member: i64,
}

/// A member's points on one scoreboard, with the parts the figure is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberPoints {
    /// Σ WORK (each request clamped to its guideline's maximum), capped at 30.
    pub work: i64,
    /// Σ RESPONSIBILITY (clamped likewise), capped at 20.
    pub responsibility: i64,
    /// The member's points: 0 for a sum of 1–2, 5 for 3–4, else the sum capped at 50.
    pub points: i64,
}

/// A member's points on one scoreboard from their requests on it.
pub fn member_points(requests: impl IntoIterator<Item = Requested>) -> MemberPoints {
    let (mut work, mut resp) = (0i64, 0i64);
    for r in requests {
        let p = r.points.clamp(0, r.max_per_member.max(0));
        match r.category {
            Category::Work => work = work.saturating_add(p),
            Category::Responsibility => resp = resp.saturating_add(p),
        }
    }
    let work = work.min(WORK_CAP);
    let responsibility = resp.min(RESPONSIBILITY_CAP);
    MemberPoints {
        work,
        responsibility,
        points: step(work + responsibility),
    }
}

/// The thresholds of the member formula on `s = work + resp`.
fn step(s: i64) -> i64 {
    match s {
        i64::MIN..=0 => 0,
        1 | 2 => 0,
        3 | 4 => 5,
        _ => s.min(MEMBER_CAP),
    }
}

/// Semester points, exact and as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SemesterFigure {
    /// Truncated to two decimals (e.g. 43.58): the figure people see.
    pub points: f64,
    /// Truncated to an integer, as korok showed it.
    pub points_integer: i64,
    /// `min(sqrt(Σ g²), cap)` unrounded.
    pub points_exact: f64,
    /// `Σ g²` over the groups (what realms' figures combine by).
    pub sum_of_squares: i64,
}

/// Semester points from per-group totals `g_k` (each already summed over the semester
/// and the one before it), capped at `cap`.
pub fn semester_points(group_totals: impl IntoIterator<Item = i64>, cap: i64) -> SemesterFigure {
    let sum_of_squares = group_totals
        .into_iter()
        .map(|g| {
            let g = g.max(0);
            g.saturating_mul(g)
        })
        .fold(0i64, i64::saturating_add);
    from_sum_of_squares(sum_of_squares, cap)
}

/// The figure for a known `Σ g²`.
pub fn from_sum_of_squares(sum_of_squares: i64, cap: i64) -> SemesterFigure {
    let s = sum_of_squares.max(0);
    let cap = cap.max(0);
    let hundredths = isqrt(i128::from(s) * 10_000).min(i128::from(cap) * 100);
    let integer = isqrt(i128::from(s)).min(i128::from(cap));
    SemesterFigure {
        // Far below 2^53 for any real cap: exact in an f64.
        points: hundredths as f64 / 100.0,
        points_integer: integer as i64,
        points_exact: (s as f64).sqrt().min(cap as f64),
        sum_of_squares: s,
    }
}

/// `⌊√n⌋` for `n ≥ 0`, exactly.
fn isqrt(n: i128) -> i128 {
    if n <= 0 {
        return 0;
    }
    // A float guess, then corrected: f64 is within a few units for these magnitudes.
    let mut x = (n as f64).sqrt() as i128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(points: i64) -> Requested {
        Requested {
            category: Category::Work,
            points,
            max_per_member: 100,
        }
    }

    fn r(points: i64) -> Requested {
        Requested {
            category: Category::Responsibility,
            points,
            max_per_member: 100,
        }
    }

    #[test]
    fn member_points_follow_the_thresholds_and_caps() {
        assert_eq!(member_points([w(1)]).points, 0, "WORK 1 → 0");
        assert_eq!(member_points([w(2), r(1)]).points, 5, "WORK 2 + RESP 1 → 5");
        assert_eq!(member_points([w(4)]).points, 5, "WORK 4 → 5");
        assert_eq!(member_points([w(5)]).points, 5, "WORK 5 → 5");
        let big = member_points([w(35), r(25)]);
        assert_eq!(big.points, 50, "WORK 35 + RESP 25 → 50");
        assert_eq!((big.work, big.responsibility), (30, 20));
        assert_eq!(member_points([]).points, 0);
        assert_eq!(member_points([w(2)]).points, 0);
        assert_eq!(member_points([w(3)]).points, 5);
        assert_eq!(member_points([w(6)]).points, 6);
        assert_eq!(member_points([w(30), r(5)]).points, 35);
        assert_eq!(
            member_points([r(40)]).points,
            20,
            "RESPONSIBILITY alone caps at 20"
        );
    }

    #[test]
    fn each_request_is_clamped_to_its_guideline_maximum() {
        let capped = Requested {
            category: Category::Work,
            points: 25,
            max_per_member: 10,
        };
        assert_eq!(member_points([capped, w(5)]).points, 15);
        let negative = Requested {
            category: Category::Work,
            points: -20,
            max_per_member: 10,
        };
        assert_eq!(member_points([negative, w(6)]).points, 6);
    }

    #[test]
    fn semester_points_are_the_capped_root_of_the_sum_of_squares() {
        let f = semester_points([30, 40], 100);
        assert_eq!(f.points, 50.00, "one group 30 and one 40 → 50.00");
        assert_eq!(f.points_integer, 50);
        // Two semesters of 20 in the same group: the group total is 40.
        assert_eq!(semester_points([20 + 20], 100).points, 40.00);
        // …whereas two groups of 20 are √800 = 28.28.
        assert_eq!(semester_points([20, 20], 100).points, 28.28);
        let capped = semester_points([50; 5], 100);
        assert_eq!(capped.points, 100.0, "five groups of 50 → 100 (capped)");
        assert_eq!(capped.points_exact, 100.0);
        assert_eq!(capped.points_integer, 100);
        assert_eq!(capped.sum_of_squares, 12_500);
        assert_eq!(semester_points([], 100).points, 0.0);
    }

    #[test]
    fn figures_are_truncated_not_rounded() {
        // √1900 = 43.5889…: 43.58 (not 43.59), integer 43 (not 44).
        let f = semester_points([30, 30, 10], 100);
        assert_eq!(f.sum_of_squares, 1900);
        assert_eq!(f.points, 43.58);
        assert_eq!(f.points_integer, 43);
        assert!((f.points_exact - 1900f64.sqrt()).abs() < 1e-12);
        // √2 · 50 = 70.7106…
        assert_eq!(semester_points([50, 50], 100).points, 70.71);
        // A lower cap wins.
        assert_eq!(semester_points([50, 50], 60).points, 60.0);
        assert_eq!(semester_points([50, 50], 60).points_integer, 60);
        // Perfect squares stay exact however large.
        for n in [1i64, 7, 99, 1000, 123_456] {
            let f = from_sum_of_squares(n * n, i64::MAX / 1000);
            assert_eq!(f.points_integer, n);
            assert_eq!(f.points, n as f64);
        }
    }
}
