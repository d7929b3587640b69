"""Statistics over a cell's seeds, shared by the grid's table.md and the analysis notebooks.

- :class:`SeedSpread`: one cell's metric over its seeds: mean, sample standard deviation and the 95 % confidence
  interval of the mean, mean ± t(0.975, n-1) * s / sqrt(n) (Student's t: a handful of seeds is a small sample).
- :func:`paired_difference` (a :class:`PairedDifference`): a row against the table's first row on the seeds both
  ran. The same seed means the same data order, initialisation of the new modules and augmentation draws, so the
  per-seed differences cancel what the two runs share (a paired t interval). Every seed tests on the same videos,
  so where both rows kept their per-video results the interval also takes in which test videos those are (seeds
  and videos both random draws, a crossed design); more seeds do not shrink that part, more test videos do.
- :func:`verdict`: our paired difference against the paper's: "agrees" / "differs" only when the interval excludes
  zero, else "not resolved", with about how many seeds would resolve it at the measured spread.
- :func:`spread_decomposition`: where a dataset's cells spread over seeds: the part every row trained with a seed
  shares (which paired differences cancel) and each row's own.
- :func:`video_split`: where one cell's spread over seeds comes from, by test video: which videos each run happens
  to get right (a larger test set shrinks it) and what a whole run shares (it learnt more or less; no test set
  shrinks that).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

# t(0.975, df) for df = 1..30 (two-sided 95 %); larger df use the Cornish-Fisher expansion in t_quantile_975
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959964
DIRECTION_TOLERANCE = 0.3  # paper differences smaller than this (points) carry no direction
MAX_SEEDS_ADVISED = 100  # "needs about N seeds" is capped here ("more than 100")
TOP1_RANGE = (0.0, 100.0)  # an accuracy's interval is shown within what an accuracy can be


def t_quantile_975(df: float) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95 %); a fractional df up to 30
    (Satterthwaite's, below) takes the whole df below it, the wider interval."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[math.floor(df) - 1]
    z = _Z975  # Cornish-Fisher: within 1e-3 of the exact quantile from df 30 on
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class SeedSpread:
    """One cell's metric over its seeds."""

    values: tuple[float, ...]  # one value per finished seed

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.mean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over the seeds (0 with one seed)."""
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def half_width(self) -> float:
        """Half-width of the 95 % confidence interval of the mean (nan with fewer than two seeds)."""
        return t_quantile_975(self.n - 1) * self.std / math.sqrt(self.n) if self.n > 1 else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - self.half_width, self.mean + self.half_width

    def text(self) -> str:
        """'-' (no seed), '64.4' (one seed) or '64.4 ± 3.1' (mean ± std)."""
        if not self.values:
            return "-"
        return f"{self.mean:.1f}" if self.n == 1 else f"{self.mean:.1f} ± {self.std:.1f}"

    def interval_text(self, bounds: tuple[float, float] | None = None) -> str:
        """'-', '64.4 (1 seed)' or '64.4 [61.2, 67.6]' (mean [95 % CI]); ``bounds``: the metric's range, which the
        shown interval is cut to (the t interval of a mean near 100 % can reach past it: "94.8 [87.4, 100.0]")."""
        if not self.values:
            return "-"
        if self.n == 1:
            return f"{self.mean:.1f} (1 seed)"
        low, high = self.interval
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        return f"{self.mean:.1f} [{low:.1f}, {high:.1f}]"


def seed_spread(values: Iterable[float]) -> SeedSpread:
    return SeedSpread(tuple(float(v) for v in values))


@dataclass(frozen=True)
class PairedDifference(SeedSpread):
    """A row's metric minus the base row's, paired by seed (`values`: one difference per seed both ran). With the
    test videos' part measured (`videos` > 0), the variance of the mean is s^2 / seeds + `video_variance`, the
    second term the draw of test videos every seed shares, which more seeds do not shrink; without it (videos = 0)
    the interval is over the seeds alone, the test videos held fixed. The two parts are estimated on different
    degrees of freedom (seeds - 1 and `video_df`), so Student's t is taken on Satterthwaite's combination of them."""

    videos: int = 0  # test videos the per-video differences were measured on (0: not measured)
    video_variance: float = 0.0  # what their draw adds to the variance of the mean (see video_part())
    video_df: float = math.inf  # the degrees of freedom of that estimate (Satterthwaite's, see video_part())

    def half_width_at(self, seeds: int) -> float:
        """The 95 % half-width with `seeds` seeds on the same test videos, at the measured spreads: t on the
        Satterthwaite degrees of freedom (a + b)^2 / (a^2 / (seeds - 1) + b^2 / video_df) of a = s^2 / seeds and
        b = video_variance, times sqrt(a + b); never narrower than the interval over the seeds alone, t(seeds - 1) x
        sqrt(a) (with few seeds the videos' many degrees of freedom would otherwise narrow it)."""
        a, b = self.std ** 2 / seeds, self.video_variance
        seeds_alone = t_quantile_975(seeds - 1) * math.sqrt(a)
        if b == 0:
            return seeds_alone
        df = (a + b) ** 2 / (a ** 2 / (seeds - 1) + b ** 2 / self.video_df)
        return max(seeds_alone, t_quantile_975(max(1.0, df)) * math.sqrt(a + b))

    @property
    def half_width(self) -> float:
        return self.half_width_at(self.n) if self.n > 1 else math.nan

    @property
    def seeds_half_width(self) -> float:
        """The half-width over the seeds alone (the test videos held fixed)."""
        return SeedSpread(self.values).half_width


def paired_difference(row: Mapping[int, float], base: Mapping[int, float],
                      by_video: Mapping[int, Sequence[float]] | None = None) -> PairedDifference:
    """Per-seed differences row - base over the seeds both have ({seed: value} each), as a PairedDifference (its mean
    and interval are the paired estimate). `by_video`: {seed: the difference on each test video}, every seed on the
    same videos in one order; where it holds every common seed (two or more), the interval takes in the test videos'
    part (video_variance), else it is over the seeds alone."""
    seeds = sorted(set(row) & set(base))
    values = tuple(float(row[s] - base[s]) for s in seeds)
    if by_video is None or len(seeds) < 2 or any(s not in by_video for s in seeds):
        return PairedDifference(values)
    diff = [by_video[s] for s in seeds]
    return PairedDifference(values, len(diff[0]), *video_part(diff))


def seeds_needed(difference: PairedDifference) -> int | None:
    """About how many seeds (on the same test videos) make the 95 % interval of this mean difference exclude zero, at
    its measured spreads (the smallest n with half_width_at(n) < |mean|); None when unknown (fewer than two seeds),
    more than MAX_SEEDS_ADVISED or none: the test videos' part alone can keep zero in the interval."""
    if difference.n < 2:
        return None
    effect = abs(difference.mean)
    if difference.std == 0 and difference.video_variance == 0:
        return difference.n if effect > 0 else None
    for n in range(2, MAX_SEEDS_ADVISED + 1):
        if difference.half_width_at(n) < effect:
            return n
    return None


def seeds_cannot_resolve(difference: PairedDifference) -> bool:
    """Whether no number of seeds on these test videos resolves the difference: its test videos' part alone keeps
    zero in the 95 % interval (t(video_df) * sqrt(video_variance) >= |mean|, where half_width_at tends with many
    seeds)."""
    if difference.videos == 0 or difference.video_variance == 0:
        return False
    return t_quantile_975(max(1.0, difference.video_df)) * math.sqrt(difference.video_variance) >= abs(difference.mean)


def verdict(difference: PairedDifference, paper_delta: float | None) -> str:
    """How our paired difference (row - first row) compares with the paper's, in words.

    "agrees with the paper" / "differs from the paper" only when our 95 % interval excludes zero; otherwise "not
    resolved at this scale" with the seeds it would need (or that no number of seeds would, on these test videos);
    "the paper shows no direction" when the paper's difference is within DIRECTION_TOLERANCE.
    """
    if paper_delta is None:
        return ""
    if abs(paper_delta) < DIRECTION_TOLERANCE:
        return f"the paper shows no direction ({paper_delta:+.1f})"
    if difference.n < 2:
        return "one seed: no interval (run --seeds 1,2,3)"
    low, high = difference.interval
    if low > 0 or high < 0:
        same = (difference.mean > 0) == (paper_delta > 0)
        return f"{'agrees with' if same else 'differs from'} the paper ({paper_delta:+.1f})"
    if needed := seeds_needed(difference):
        more = f"needs about {needed} seeds"
    elif seeds_cannot_resolve(difference):
        more = f"no number of seeds resolves it on {difference.videos} test videos"
    else:
        more = f"needs more than {MAX_SEEDS_ADVISED} seeds"
    return f"not resolved at this scale ({more})"


@dataclass(frozen=True)
class SpreadDecomposition:
    """How the cells of one dataset spread over seeds, split as top-1 = row + seed + the row's own deviation (a
    two-way layout, rows fixed, seeds random): `shared` is the spread of the seed's part, common to every row
    trained with that seed (the rows of a seed share its data order and augmentation draws), `own` the spread of
    the rest, each row's own. A cell spreads by sqrt(shared^2 + own^2) over seeds; a paired difference between two
    rows by sqrt(2) * own, as the seed's part cancels in it. Standard deviations, in the metric's units."""

    rows: int
    seeds: int  # the seeds every row finished (the only ones used)
    cell: float  # root of the cells' mean variance over those seeds
    shared: float
    own: float

    def text(self) -> str:
        return (f"{self.cell:.1f} points per cell over seeds ({self.rows} rows x {self.seeds} seeds): {self.shared:.1f} "
                f"shared by the rows of a seed, {self.own:.1f} each row's own (a paired difference spreads by about "
                f"{math.sqrt(2) * self.own:.1f})")


def spread_decomposition(cells: Mapping[Hashable, Mapping[int, float]]) -> SpreadDecomposition | None:
    """The SpreadDecomposition of {row: {seed: value}} on the seeds every row has; None with fewer than two rows or
    two such seeds. Estimates (the mean squares of a two-way layout without replication): own^2 = the residual mean
    square, sum (y_rs - row mean_r - seed mean_s + grand mean)^2 / ((R-1)(S-1)); shared^2 = (R * variance of the
    seed means - own^2) / R, floored at 0."""
    common = sorted(set.intersection(*(set(v) for v in cells.values()))) if cells else []
    rows, seeds = len(cells), len(common)
    if rows < 2 or seeds < 2:
        return None
    y = [[float(v[s]) for s in common] for v in cells.values()]
    grand = sum(map(sum, y)) / (rows * seeds)
    row_means = [sum(r) / seeds for r in y]
    seed_means = [sum(r[j] for r in y) / rows for j in range(seeds)]
    residual = sum((y[i][j] - row_means[i] - seed_means[j] + grand) ** 2 for i in range(rows) for j in range(seeds))
    own_var = residual / ((rows - 1) * (seeds - 1))
    shared_var = max(0.0, (rows * statistics.variance(seed_means) - own_var) / rows)
    cell_var = statistics.mean(statistics.variance(r) for r in y)
    return SpreadDecomposition(rows, seeds, math.sqrt(cell_var), math.sqrt(shared_var), math.sqrt(own_var))


@dataclass(frozen=True)
class VideoSplit:
    """One cell's top-1 over seeds, split by its test videos. With c[s][i] = 1 where seed s's run gets video i right,
    the variance of top-1 = mean_i c[s][i] over seeds is exactly (1/n^2) * sum over i, j of cov_s(c_i, c_j): the
    diagonal terms (each video's own variance over the runs) give `per_video`, which a test set k times as large
    (videos of the same kind) divides by sqrt(k); the off-diagonal terms (videos right or wrong together, as in a run
    that learnt more or less than another) give `run`, which no test set shrinks. Standard deviations in points."""

    seeds: int
    videos: int
    mean: float  # mean top-1 over the seeds (%)
    total: float  # its standard deviation over the seeds
    per_video: float  # sqrt((1/n^2) * sum_i var_s(c_i)) * 100
    run: float  # sqrt(total^2 - per_video^2) floored at 0 (videos can also disagree more than by chance)

    def with_videos(self, videos: int) -> float:
        """The spread over seeds expected with `videos` test videos of the same kind instead of `self.videos`."""
        return math.sqrt(self.run ** 2 + self.per_video ** 2 * self.videos / videos)


def video_split(correct: Sequence[Sequence[float]]) -> VideoSplit | None:
    """The VideoSplit of a cell from `correct[s][i]` (1 where seed s's run gets test video i right, 0 where not;
    every seed on the same videos in the same order); None with fewer than two seeds."""
    seeds = len(correct)
    if seeds < 2:
        return None
    videos = len(correct[0])
    if videos == 0 or any(len(c) != videos for c in correct):
        raise ValueError(f"video_split: every seed needs the same test videos (got {[len(c) for c in correct]})")
    top1 = [100.0 * sum(c) / videos for c in correct]
    total_var = statistics.variance(top1)
    per_video_var = sum(statistics.variance([c[i] for c in correct]) for i in range(videos)) * (100.0 / videos) ** 2
    return VideoSplit(seeds, videos, statistics.mean(top1), math.sqrt(total_var), math.sqrt(per_video_var),
                      math.sqrt(max(0.0, total_var - per_video_var)))


def video_part(diff: Sequence[Sequence[float]]) -> tuple[float, float]:
    """What the draw of test videos adds to the variance of the mean of `diff[s][i]` (a row's difference from the base
    row on test video i in seed s), with the seeds and the test videos both random draws (a crossed two-way design),
    and the degrees of freedom of that estimate. The mean's variance is (MS_seeds + MS_videos - MS_residual) /
    (seeds x videos), of which MS_seeds / (seeds x videos) is the paired difference's own over the seeds; the rest,
    (MS_videos - MS_residual) / (seeds x videos), floored at 0, is the videos' part, with Satterthwaite's degrees of
    freedom (MS_videos - MS_residual)^2 / (MS_videos^2 / (videos - 1) + MS_residual^2 / ((seeds - 1)(videos - 1)))
    (inf where the part is 0). Measured use: benchmarks/test_set_size.py (docs/tiny_scale.md, five seeds)."""
    seeds = len(diff)
    videos = len(diff[0]) if seeds else 0
    if seeds < 2 or videos < 2 or any(len(d) != videos for d in diff):
        raise ValueError(f"video_part: needs >= 2 seeds on the same >= 2 videos (got {[len(d) for d in diff]})")
    by_seed = [statistics.mean(d) for d in diff]
    by_video = [statistics.mean(d[i] for d in diff) for i in range(videos)]
    mean = statistics.mean(by_seed)
    ms_videos = seeds * statistics.variance(by_video)
    residual_df = (seeds - 1) * (videos - 1)
    ms_residual = sum((d[i] - by_seed[s] - by_video[i] + mean) ** 2 for s, d in enumerate(diff)
                      for i in range(videos)) / residual_df
    if ms_videos <= ms_residual:
        return 0.0, math.inf
    df = (ms_videos - ms_residual) ** 2 / (ms_videos ** 2 / (videos - 1) + ms_residual ** 2 / residual_df)
    return (ms_videos - ms_residual) / (seeds * videos), df


def crossed_half_width(diff: Sequence[Sequence[float]]) -> float:
    """95 % half-width of the mean of `diff[s][i]` (see video_part) with the seeds and the test videos both random
    draws: the per-seed means' paired interval widened by the test videos' part."""
    return PairedDifference(tuple(statistics.mean(d) for d in diff), len(diff[0]), *video_part(diff)).half_width
