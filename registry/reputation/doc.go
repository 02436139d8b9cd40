// Package reputation computes EigenTrust reputation over the feedback
// ("ratings") that requesters file about the executors of delegated tasks,
// with distrust: evidence that a peer serves badly cancels its trust and
// flows back to the peers that vouched for it. Compute is a pure function:
// the same ratings, in any order, with the same seeds and parameters, give
// the same result bit for bit, so every node that holds the same records
// derives the same community trust vector.
//
// reputation must not read records, the clock or the network: the registry
// gathers the verified feedback, the caller chooses the seeds (founders
// alone for the community vector; itself, founders and peers it trusts for
// a personalised one) and the time cut.
//
// # Algorithm
//
// This is the normative description; docs/trust.md copies it. a is
// Damping.
//
//  1. Counted ratings. A rating counts if Before is 0 or Created < Before,
//     and Rater != Ratee. Of the ratings one rater filed on one receipt,
//     only the latest by (Created, then ID in byte order) counts. The peers
//     are the seeds and the raters and ratees of the ratings that pass the
//     cut (self-ratings excluded). Feedback_j is the number of counted
//     ratings of j.
//  2. Evidence per pair. Scores are clamped to 0..1000. A rating's value is
//     v = (score-500)/500 in [-1, 1] and its weight
//     w = 2^(-floor(64·age/HalfLife)/64), age = max(0, Now-Created), taken
//     from a table of constants so every architecture gets the same bits;
//     w = 1 when HalfLife < 0. Now defaults to
//     the newest Created among the counted ratings. For rater i and ratee j
//     with W_ij = Σ w and S_ij = Σ w·v over their counted ratings,
//     s_ij = S_ij · min(1, PairCap/W_ij): the weighted mean opinion times a
//     confidence that saturates at PairCap ratings, so |s_ij| ≤ PairCap and
//     flooding one pair adds nothing past the cap.
//  3. Local trust and blame weights. With A_i = Σ_k |s_ik|,
//     c_ij = max(s_ij,0)/A_i and β_ij = max(-s_ij,0)/A_i, so that
//     Σ_j (c_ij + β_ij) = 1. Unlike the original EigenTrust (which
//     normalises by the positive evidence alone), a rater passes on only
//     the positive share of its evidence: a rater half of whose evidence is
//     negative passes half of its trust, and badmouthing is not free.
//  4. Seeds. p is uniform over the distinct seeds. With no seeds it is
//     uniform over all peers, and no peer is exempt in step 5 (a degenerate,
//     unpersonalised vector: every node that uses it should pass seeds).
//  5. Iteration. t_0 = p, δ_0 = 0. Step k+1 computes, from t = t_k and
//     δ = δ_k, for every peer j:
//     o_i = min(t_i, RaterCap)                  what rater i passes on;
//     e_j = (1-a)·Σ_i o_i·c_ij                  the trust j earns;
//     b_j = Σ_i o_i·β_ij                        its blame (capped like praise);
//     D_j = b_j + (1-a)·Σ_k c_jk·δ_k            its distrust: its blame and
//     the deficits of the peers it vouches for;
//     x_j = min(e_j, D_j), or 0 for a seed      the trust distrust cancels;
//     δ'_j = D_j - x_j                          its deficit;
//     t'_j = e_j - x_j + R·p_j, where R = Σ_i t_i - Σ_i (e_i - x_i) is all
//     that was not kept: what the cap withheld, the blame shares, what
//     raters without positive evidence hold, the cancelled trust and the
//     restart a·Σt. Then t' is divided by its sum (1 up to rounding). The
//     iteration stops when Σ_j |t'_j - t_j| < Epsilon or after
//     MaxIterations steps.
//  6. Outputs. Trust = t. Blame_j = Σ_i min(t_i,RaterCap)·β_ij of the final t, in
//     [0,1]; Σ_j Blame_j ≤ 1. Distrust = D and Distrusted = (δ_j > 0) of
//     the last step: with seeds given, a distrusted peer holds exactly 0
//     trust (seeds are never distrusted). Standing = Trust - Blame/a. Entries are ranked by Trust
//     descending, ties by peer ID ascending; Level is
//     round(1000·Trust/max Trust).
//
// Every floating-point sum runs in a fixed order: ratings are sorted per
// rater by (Receipt, Created, ID) before they are summed into pairs; a
// row's sums run over its ratees in order of first appearance in that
// sort; every peer's inflow and blame sum over raters in peer ID order.
// Peers are computed independently within a step, so the result does not
// depend on how many goroutines compute it.
//
// # Why these bounds
//
// Trust enters only at the seeds and through positive ratings by trusted
// peers. A group that no trusted peer rates positively (a Sybil flood, a
// collective that serves everyone badly) holds exactly zero, however much
// its members praise each other, and newcomers start at zero.
//
// A group that earns an inflow I from trusted raters keeps it circulating
// and can hold up to I/a: in plain EigenTrust a collective that serves
// honest requesters well half of the time ("camouflage") captures most of
// the trust, because its members vouch for each other while the honest
// raters' complaints have no effect. Distrust is the answer: blame is
// carried back along the vouching edges with the same damping as trust,
// so the collective amplifies its own blame as much as its trust, and
// blame weighs 1/(1-a) more than praise per unit of evidence. A collective
// whose service is bad half of the time ends in deficit (in sim_test.go,
// with 30% of the peers, it keeps under 1% of the trust, against 77%
// without distrust); an honest peer fooled once inherits only the share of
// the bad peer's deficit that matches its vouching, damped.
//
// Standing subtracts Blame scaled by 1/a, the amplification trust gets
// from the iteration, so that a peer whose trust comes from a clique is
// ranked below one with the same trust and no complaints. Callers should
// choose providers by Standing and treat Standing < 0 (or Distrusted) as
// distrusted.
//
// PairCap bounds what one requester can give (or take from) one provider,
// and RaterCap what any one rater, a seed included, passes on.
package reputation
