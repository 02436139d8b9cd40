// Package certify decides whether a subject is certified: a pure function
// of the verified attestations about it, which of them their authors
// revoked, each auditor's community trust level and the community policy.
// Every node that holds the same records computes the same decision.
//
// The rules, for one subject at time now (unix ms):
//
//   - Only attestations whose Subject is the subject count.
//   - Revoked (by their author) and expired (Expires != 0 && Expires <= now)
//     attestations count for nothing; the reasons say how many there were.
//   - Of the rest, each auditor's latest attestation on the subject (by
//     Created, then ID) is its only word, whatever its predicate: an
//     auditor that passed and later failed counts as failing, and revoking
//     the fail makes the pass count again. Duplicates therefore count once.
//   - An auditor qualifies when its community trust level, in thousandths,
//     is at least MinAuditorTrust. Unqualified auditors count for nothing:
//     neither their passes nor their fails.
//   - A fail from a qualifying auditor blocks certification.
//   - A warn neither counts as a pass nor blocks; the reasons list it. So
//     does a verdict this node does not know, which still supersedes the
//     auditor's earlier attestations.
//   - The subject is certified iff no qualifying auditor fails it and at
//     least MinAttestations qualifying auditors pass it. MinAttestations
//     below 1 is taken as 1: nothing is certified without an attestation.
//
// certify must not read records, compute trust or know where the policy
// comes from: the registry gathers attestations and revocations, the
// reputation package computes community trust, and the registry derives
// the policy in force. It does no I/O and reads no clock.
package certify
