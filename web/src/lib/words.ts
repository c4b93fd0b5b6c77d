// Everyday words for the codes on the ledger: categories, purposes,
// actions, roles, decisions, and whole sentences for consent cards and
// audit entries. Local dates and times come from the browser's locale.

import { shortDid } from "./did";

export const CATEGORY_WORDS: Record<string, string> = {
  lab: "lab results",
  "vital-signs": "vital signs (blood pressure, pulse, weight)",
  imaging: "imaging (X-rays, scans) and their reports",
  "mental-health": "mental health notes",
  hiv: "HIV-related information",
  "substance-use": "alcohol and drug use information",
  "sexual-violence": "information about sexual violence",
  "social-history": "lifestyle and social history",
  survey: "questionnaires you filled in",
  "medication-request": "prescriptions",
  condition: "diagnoses and health problems",
  "allergy-intolerance": "allergies",
  immunization: "vaccinations",
  procedure: "operations and procedures",
  encounter: "visits and stays",
  "diagnostic-report": "test reports",
  "document-reference": "documents and letters",
  patient: "your identity details (name, date of birth)",
  "research-subject": "research participation",
};

/** Categories offered in the grant form, most common first. */
export const GRANT_CATEGORIES = [
  "lab",
  "vital-signs",
  "imaging",
  "medication-request",
  "condition",
  "allergy-intolerance",
  "immunization",
  "diagnostic-report",
  "mental-health",
  "patient",
];

export const PURPOSE_WORDS: Record<string, string> = {
  TREAT: "for your treatment",
  ETREAT: "for emergency treatment",
  HPAYMT: "to handle payment for your care",
  HOPERAT: "to run the care organization",
  HRESCH: "for health research",
  PUBHLTH: "for public health",
  PATRQT: "because you asked",
  COVERAGE: "to check your insurance coverage",
  HMARKT: "for marketing",
};

/** Purposes offered in the grant form. */
export const GRANT_PURPOSES = ["TREAT", "ETREAT", "HRESCH", "HPAYMT", "COVERAGE", "PUBHLTH", "HOPERAT", "PATRQT"];

export const ROLE_WORDS: Record<string, string> = {
  clinician: "clinician",
  nurse: "nurse",
  "lab-technician": "lab technician",
  pharmacist: "pharmacist",
  researcher: "researcher",
  "payer-agent": "insurer's agent",
  device: "device",
  admin: "administrator",
};

export const KIND_WORDS: Record<string, string> = {
  clinic: "clinic",
  hospital: "hospital",
  lab: "laboratory",
  payer: "insurer",
  research: "research institute",
  pharmacy: "pharmacy",
  manufacturer: "manufacturer",
  regulator: "regulator",
};

export const category = (code: string): string => CATEGORY_WORDS[code] ?? code.replace(/-/g, " ");
export const purpose = (code: string): string => PURPOSE_WORDS[code] ?? `for purpose ${code}`;

/** "lab results, vital signs and imaging". */
export function list(items: string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** A did:web organization as a name: "clinic.example". */
export function orgName(did: string): string {
  return did.startsWith("did:web:") ? decodeURIComponent(did.slice("did:web:".length).split(":")[0]) : shortDid(did);
}

export interface Directory {
  orgs: { did: string; kind: string; index: number }[];
  people: {
    did: string;
    memberships: { org: string; roles: string[]; jurisdiction: string | null; status: string }[];
    licence_registered: boolean;
  }[];
}

/** Who a DID is, in words, from the directory: "the clinic clinic.example", "a clinician at clinic.example". */
export function who(did: string, directory: Directory | null, you?: string): string {
  if (you && did === you) return "you";
  const org = directory?.orgs.find((o) => o.did === did);
  if (org) return `everyone at the ${KIND_WORDS[org.kind] ?? org.kind} ${orgName(did)}`;
  if (did.startsWith("did:web:")) return `everyone at ${orgName(did)}`;
  const person = directory?.people.find((p) => p.did === did);
  if (person && person.memberships.length > 0) {
    const m = person.memberships[0];
    const role = m.roles.map((r) => ROLE_WORDS[r] ?? r)[0] ?? "member";
    return `${/^[aeiou]/.test(role) ? "an" : "a"} ${role} at ${orgName(m.org)} (${shortDid(did)})`;
  }
  return `someone with the key ${shortDid(did)}`;
}

export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export const localDate = (unix: number): string =>
  new Date(unix * 1000).toLocaleDateString(undefined, { day: "numeric", month: "long", year: "numeric" });

export const localDateTime = (unix: number): string =>
  new Date(unix * 1000).toLocaleString(undefined, { day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit" });

export interface Grant {
  id: string;
  patient: string;
  grantee: string;
  scope: { categories?: string[]; resource_types?: string[]; record_ids?: string[] };
  actions: string[];
  purpose: string;
  not_before: number;
  not_after: number;
  jurisdictions?: string[];
  active?: boolean;
}

/** What a grant covers, in words. */
export function scopeWords(scope: Grant["scope"], patientWord = "your"): string {
  const parts: string[] = [];
  if (scope.categories?.length) parts.push(list(scope.categories.map(category)));
  if (scope.resource_types?.length) parts.push(`records of type ${list(scope.resource_types)}`);
  if (scope.record_ids?.length) {
    parts.push(scope.record_ids.length === 1 ? "one chosen record" : `${scope.record_ids.length} chosen records`);
  }
  return `${patientWord} ${parts.join(", limited to ") || "records"}`;
}

/** The sentence on a consent card. */
export function consentSentence(grant: Grant, directory: Directory | null): string {
  const verb =
    grant.actions.includes("read") && grant.actions.includes("write")
      ? "can see and add to"
      : grant.actions.includes("write")
        ? "can add to"
        : "can see";
  const where = grant.jurisdictions?.length ? `, while working in ${list(grant.jurisdictions)}` : "";
  const from = grant.not_before * 1000 > Date.now() ? ` from ${localDate(grant.not_before)}` : "";
  return `${capitalize(who(grant.grantee, directory))} ${verb} ${scopeWords(grant.scope)}, ${purpose(grant.purpose)}${where}${from}, until ${localDate(grant.not_after)}.`;
}
