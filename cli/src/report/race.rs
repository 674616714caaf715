//! How the grid and the classic table spend their time: rounds in random order, and a race
//! that stops sampling the configurations that are clearly slower than the leader.
//!
//! Every round measures each configuration still in the race once, in a fresh random order (so
//! a slow stretch of the machine is spread over all of them). After `min_rounds`, a
//! configuration leaves the race when its paired interval of time ÷ the leader's lies wholly
//! above 1: more samples of it would not change which one is best. The ones named `always`
//! (the serial reference, the control, the default policy) never leave. The race ends when its
//! seconds are spent or after `max_rounds`.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::report::stats::{self, Samples};

/// How long a race runs: its rounds and its seconds.
#[derive(Debug, Clone, Copy)]
pub struct RaceLimits {
    /// Rounds every configuration gets.
    pub min_rounds: usize,
    /// Rounds no configuration exceeds.
    pub max_rounds: usize,
    /// Seconds of measuring after which no new round starts (once `min_rounds` are done).
    pub seconds: f64,
}

impl RaceLimits {
    /// Whether a race that ran `rounds` rounds in `spent` seconds should stop.
    pub fn done(&self, rounds: usize, spent: f64) -> bool {
        rounds >= self.max_rounds || (rounds >= self.min_rounds && spent >= self.seconds)
    }
}

/// The samples of every configuration, and which are still racing.
#[derive(Debug, Clone)]
pub struct Race {
    pub samples: Vec<Samples>,
    pub active: Vec<bool>,
    always: Vec<usize>,
    rounds: usize,
    rng: SmallRng,
}

/// One measurement: seconds per call, and the wall time it took (what the race's seconds count).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub per_call: f64,
    pub wall: f64,
}

impl Race {
    /// A race of `configs` configurations; those in `always` are measured every round.
    pub fn new(configs: usize, always: &[usize], seed: u64) -> Race {
        Race {
            samples: vec![Samples::default(); configs],
            active: vec![true; configs],
            always: always.to_vec(),
            rounds: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Rounds run so far.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Runs rounds until `limits` say stop; `measure(i)` measures configuration `i` once.
    ///
    /// # Errors
    /// The first error of `measure`.
    pub fn run<E>(
        &mut self,
        limits: RaceLimits,
        mut measure: impl FnMut(usize) -> Result<Sample, E>,
    ) -> Result<(), E> {
        let mut spent = 0.0;
        while !limits.done(self.rounds, spent) {
            spent += self.step(limits.min_rounds, &mut measure)?;
        }
        Ok(())
    }

    /// One round over the configurations still racing, then (past `min_rounds`) the clearly
    /// slower ones leave; returns the wall time spent. For callers that interleave races.
    ///
    /// # Errors
    /// The first error of `measure`.
    pub fn step<E>(
        &mut self,
        min_rounds: usize,
        mut measure: impl FnMut(usize) -> Result<Sample, E>,
    ) -> Result<f64, E> {
        let active: Vec<usize> = (0..self.samples.len())
            .filter(|&i| self.active[i])
            .collect();
        let spent = self.round(&active, &mut measure)?;
        if self.rounds >= min_rounds {
            self.drop_clearly_slower();
        }
        Ok(spent)
    }

    /// `rounds` more rounds of only the configurations `which` (a re-measurement).
    ///
    /// # Errors
    /// The first error of `measure`.
    pub fn extra<E>(
        &mut self,
        which: &[usize],
        rounds: usize,
        mut measure: impl FnMut(usize) -> Result<Sample, E>,
    ) -> Result<(), E> {
        for _ in 0..rounds {
            self.round(which, &mut measure)?;
        }
        Ok(())
    }

    /// One round over `which` in random order; returns the wall time spent.
    fn round<E>(
        &mut self,
        which: &[usize],
        measure: &mut impl FnMut(usize) -> Result<Sample, E>,
    ) -> Result<f64, E> {
        let mut order = which.to_vec();
        order.shuffle(&mut self.rng);
        let mut wall = 0.0;
        for i in order {
            let s = measure(i)?;
            self.samples[i].0.push((self.rounds, s.per_call));
            wall += s.wall;
        }
        self.rounds += 1;
        Ok(wall)
    }

    /// The racing configuration with the smallest statistic.
    pub fn leader(&self) -> Option<usize> {
        (0..self.samples.len())
            .filter(|&i| self.active[i])
            .min_by(|&a, &b| {
                self.samples[a]
                    .estimate()
                    .total_cmp(&self.samples[b].estimate())
            })
    }

    fn drop_clearly_slower(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        for i in 0..self.samples.len() {
            if !self.active[i] || i == leader || self.always.contains(&i) {
                continue;
            }
            let seed = (self.rounds * 1000 + i) as u64;
            let (_, interval) = stats::ratio(&self.samples[i], &self.samples[leader], seed);
            if interval.is_some_and(|iv| iv.lo > 1.0) {
                self.active[i] = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::tests::noisy;
    use rand::Rng;

    #[test]
    fn clearly_slower_configurations_leave_and_the_rest_keep_sampling() {
        let truth = [1.0, 0.5, 0.52, 2.0, 3.0, 1.0];
        let mut rng = SmallRng::seed_from_u64(1);
        let mut race = Race::new(truth.len(), &[0, 5], 7);
        let limits = RaceLimits {
            min_rounds: 6,
            max_rounds: 40,
            seconds: 1e9,
        };
        race.run(limits, |i| -> Result<Sample, ()> {
            let t = noisy(&mut rng, truth[i]);
            Ok(Sample {
                per_call: t,
                wall: t,
            })
        })
        .unwrap();
        assert_eq!(race.rounds(), 40);
        assert!(
            !race.active[3] && !race.active[4],
            "2× and 3× the best leave"
        );
        assert!(race.samples[3].len() < 20 && race.samples[4].len() < 20);
        assert!(race.active[0] && race.active[5], "always-measured stay");
        assert_eq!(race.samples[0].len(), 40);
        assert!(
            race.active[1] && race.samples[1].len() == 40,
            "the best stays"
        );
        assert!(race.samples[2].len() >= 6, "every one gets min_rounds");
    }

    #[test]
    fn after_a_race_the_best_is_the_true_best_or_tied_with_it() {
        // The grid's race on a 2-core grid's shape with 30% noise: cells that leave early have
        // fewer rounds, and still the best (the highest printed speedup) is the true best or
        // tied with it in at least 95% of races, and no printed speedup beats it.
        use crate::report::stats::tests::TRUTHS;
        let mut rng = SmallRng::seed_from_u64(3);
        let limits = RaceLimits {
            min_rounds: 8,
            max_rounds: 12,
            seconds: 1e9,
        };
        let (trials, mut good) = (40, 0);
        for t in 0..trials {
            let mut race = Race::new(TRUTHS.len(), &[0], t);
            race.run(limits, |i| -> Result<Sample, ()> {
                let burst = if rng.random::<f64>() < 0.125 {
                    1.5
                } else {
                    1.0
                };
                let s = TRUTHS[i] * (1.0 + 0.3 * rng.random::<f64>()) * burst;
                Ok(Sample {
                    per_call: s,
                    wall: s,
                })
            })
            .unwrap();
            let best = stats::best_by_speedup(&race.samples[0], &race.samples).unwrap();
            let printed = |i: usize| stats::ratio_value(&race.samples[0], &race.samples[i]);
            assert!((0..TRUTHS.len()).all(|i| printed(i) <= printed(best)));
            good += usize::from(best == 2 || stats::tied(&race.samples[2], &race.samples[best], t));
        }
        assert!(good * 100 >= trials as usize * 95, "{good} of {trials}");
    }

    #[test]
    fn the_time_limit_stops_new_rounds_after_the_minimum() {
        let mut race = Race::new(3, &[0], 1);
        let limits = RaceLimits {
            min_rounds: 4,
            max_rounds: 100,
            seconds: 10.0,
        };
        race.run(limits, |_| -> Result<Sample, ()> {
            Ok(Sample {
                per_call: 1.0,
                wall: 1.0,
            })
        })
        .unwrap();
        // 3 s a round: four rounds (12 s) are the minimum, and none starts after 10 s.
        assert_eq!(race.rounds(), 4);
        let mut failing = Race::new(2, &[], 1);
        assert_eq!(failing.run(limits, |_| Err("boom")), Err("boom"));
    }
}
