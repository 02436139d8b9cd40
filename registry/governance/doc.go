// Package governance tallies a community's votes and derives its policy from
// the proposals that passed. Both are pure functions: the same proposal,
// ballots, weights and time give the same Result on every node, bit for bit,
// whatever the order of the ballots, and the same genesis and passed
// proposals give the same PolicyState. The tally uses integer arithmetic
// only, so no platform's floating point can make two nodes disagree.
//
// governance must not read records, the clock or the network: the registry
// gathers the verified proposal and vote records, the caller builds the
// weights (MemberWeights or TrustWeights, from the community trust at the
// proposal's start), names the late ballots to exclude and passes the time.
//
// # Tally rules
//
// This is the normative description; docs/governance.md copies it. Shares
// (Quorum, Threshold, quadratic credits) are in thousandths: 1000 = 100%.
//
//  1. Proposal. Tally returns StatusInvalid with nothing counted unless
//     Proposal.Validate accepts it: 2..32 choices, a known method and
//     weighting, Quorum and Threshold in 0..1000, Start ≤ End, and the
//     weights sum to at most MaxTotalWeight.
//  2. Ballots. Ballots with the same ID are one ballot (IDs are content
//     addresses); should copies differ, the least by (Voter, Created,
//     Choices, Credits) is kept. A ballot is ignored, with the first
//     reason that applies, if Created < Start ("before start"),
//     Created > End ("after end"), its ID is in exclude ("excluded as
//     late"), its voter has weight 0 or none ("not eligible"), or it is
//     malformed for the method ("invalid", see 3). Of one voter's remaining
//     ballots only the latest by (Created, then ID in byte order) counts;
//     the others are "superseded". An ignored ballot never supersedes.
//  3. Well-formed ballots. Every listed choice is in 0..Choices-1 and none
//     repeats. single: exactly one choice. approval and ranked: at least
//     one (ranked lists preferences, most preferred first; a partial
//     ranking is allowed). quadratic: at least one, one credit per choice,
//     each credit ≥ 0 and their sum ≤ 1000. Credits are ignored by the
//     other methods.
//  4. Weight and quorum. Eligible is the sum of all weights (voters or
//     not); Weight is the sum of the counted voters' weights. The quorum is
//     met if Weight·1000 ≥ Quorum·Eligible.
//  5. Counting. single: a ballot adds its voter's weight to its choice.
//     approval: its voter's full weight to every approved choice. ranked:
//     instant runoff (6). quadratic: a ballot adds
//     votes = isqrt(weight·credits) to each listed choice, isqrt the
//     integer square root rounded down; with weight ≤ MaxTotalWeight and
//     credits ≤ 1000 the product fits in a uint64.
//  6. Instant runoff. Every choice starts in the race. Each round, every
//     counted ballot adds its voter's weight to its most preferred choice
//     still in the race; a ballot with none left is exhausted and leaves
//     that round's active weight (the round's total). The rounds stop when
//     the active weight is 0, the round's leader has a strict majority of
//     it (2·count > active), or at most two choices remain. Otherwise the
//     choice with the lowest count is eliminated; a tie goes to the one with
//     the lowest count in the previous round, then to the highest index.
//     Rounds records every round's counts (0 for eliminated choices);
//     Counts is the last round's.
//  7. Leader and threshold. The leader is the choice with the greatest
//     count; a tie for the greatest, or a greatest count of 0, means no
//     leader (-1). The threshold's base is Weight for single and approval,
//     the last round's active weight for ranked, and the sum of all
//     quadratic votes (Σ Counts) for quadratic. The leader clears the
//     threshold if Counts[leader]·1000 ≥ Threshold·Base.
//  8. Status. now < Start: pending. Start ≤ now ≤ End: open (counts so far,
//     no verdict). now > End: no-quorum if the quorum is not met, else
//     passed if there is a leader that clears the threshold, else
//     rejected. Winner is the leader when the status is passed, -1
//     otherwise; Leader is set whatever the status.
//  9. Fingerprint. SHA-256 of the counted ballots' IDs, sorted in byte
//     order and joined with "\n" (no trailing newline; no counted ballots
//     hash the empty string). Counted holds the same sorted IDs. Two nodes
//     with the same fingerprint counted the same ballot set.
//
// # Policy rules
//
// Derive starts from the genesis policy values and founders and applies the
// passed proposals' actions in order of End, ties by proposal ID in byte
// order; a proposal ID seen before is skipped. An action that cannot apply
// is skipped and reported as "proposal <ID>: <reason>", and changes nothing:
//
//   - set-policy sets Values[Key] = Value if validKey accepts it.
//   - ban marks Peer banned (skipped if already banned); unban lifts it
//     (skipped if not banned).
//   - add-founder adds Peer (skipped if already a founder or if there are
//     MaxFounders); remove-founder removes it (skipped if not a founder,
//     and never removes the last founder).
//   - adopt-charter sets Charter to Target, the charter record's CID text.
//   - certify adds Subject to Certified and removes it from Decertified;
//     decertify does the opposite.
//   - any other type is skipped as unknown.
package governance
