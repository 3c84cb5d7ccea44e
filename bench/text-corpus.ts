import { seededRandom } from "./stats.js";

/**
 * Help-centre vocabulary shared by the bulk corpus (random word runs, generated in SQL), the real
 * documents (generated sentences) and the queries, so the full-text leg finds matches in every
 * tenant instead of always returning nothing.
 */
export const WORDS = (
  "account admin alert annual api archive audit backup bank billing browser cache card certificate " +
  "channel checkout client cluster compliance connection contract credential customer dashboard data " +
  "database deadline delete deploy device discount domain download email encryption endpoint error " +
  "escalation export failover feature firewall gdpr group hipaa import incident integration invoice " +
  "key latency license limit log login migration mobile monthly network notification okta onboarding " +
  "order outage partner password payment permission plan policy portal pricing privacy project quota " +
  "rate receipt refund region release renewal report request restore retention role rotate saml " +
  "schedule scope secret security server session sla sso storage subscription support tax team " +
  "ticket token training transfer trial upgrade upload usage user vat vendor webhook workspace"
).split(" ");

const TOPICS = [
  "Billing and invoices", "API keys and tokens", "Single sign-on", "Data retention", "Backups and restore",
  "Webhooks", "Security and compliance", "Support and escalation", "Plans and pricing", "Regions and latency",
];

const SENTENCES = [
  "To {verb} the {noun}, open the {noun} page in the admin portal and choose {noun} settings.",
  "Every {noun} is reviewed within two business days, and the {noun} owner receives an email notification.",
  "If the {noun} fails, the system retries three times before it raises an {noun} incident.",
  "Customers on the annual plan can {verb} their {noun} without contacting support.",
  "The {noun} policy applies to every workspace, including trial and sandbox projects.",
  "We keep the {noun} for ninety days; after that it is deleted from primary storage and backups.",
  "Administrators can {verb} a {noun} at any time; the change takes effect on the next request.",
  "A {noun} that is older than twelve months must be rotated according to the security policy.",
  "Refunds for the {noun} are issued to the original payment card within ten days.",
  "Latency in the {noun} region stays below two hundred milliseconds for most requests.",
  "Contact the support team with the {noun} id and the request id shown in the error message.",
  "The audit log records who changed the {noun}, when, and from which IP address.",
];

const VERBS = ["rotate", "export", "delete", "restore", "upgrade", "configure", "renew", "revoke", "download", "schedule"];

/** Questions users ask; each uses words of the shared vocabulary so both search legs do real work. */
export const QUERY_TEXTS = [
  "how do I rotate an api key", "refund for the annual plan", "export the audit log", "webhook retry policy",
  "data retention period for backups", "configure saml sso with okta", "invoice vat tax number",
  "upgrade the subscription plan", "restore a deleted project", "support ticket escalation sla",
  "latency in the eu region", "payment card declined at checkout", "revoke a user session token",
  "gdpr data export request", "hipaa compliance and encryption", "download the monthly usage report",
  "reset my login password", "rate limit quota exceeded error", "schedule a database backup",
  "add a team member role permission", "cancel the trial subscription", "renewal discount for contracts",
  "firewall rules for the webhook endpoint", "certificate for a custom domain", "incident notification email",
  "storage limit for uploads", "migration from another vendor", "secret scope for api tokens",
  "partner pricing and licenses", "mobile app login with sso", "archive old invoices",
  "who changed the security policy", "failover to another region", "onboarding training for admins",
  "bank transfer payment receipt", "delete my account and data", "release notes for the new feature",
  "cluster outage report", "session timeout in the browser", "workspace notification settings",
];

export interface GeneratedDocument {
  title: string;
  markdown: string;
}

/**
 * Markdown documents of three sections with three paragraphs each, sized so the default chunker
 * (900 chars, 150 overlap) makes about six chunks per document, like a typical help article.
 */
export function generateDocuments(count: number, seed: number): GeneratedDocument[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const sentence = () =>
    pick(SENTENCES)
      .replaceAll("{verb}", () => pick(VERBS))
      .replaceAll("{noun}", () => pick(WORDS));
  const paragraph = () => Array.from({ length: 4 }, sentence).join(" ");
  return Array.from({ length: count }, (_, i) => {
    const topic = TOPICS[i % TOPICS.length]!;
    const title = `${topic} (article ${i + 1})`;
    const sections = Array.from({ length: 3 }, (_, s) => {
      const heading = `## ${pick(VERBS)} ${pick(WORDS)} ${s + 1}`;
      return [heading, paragraph(), paragraph(), paragraph()].join("\n\n");
    });
    return { title, markdown: [`# ${title}`, ...sections].join("\n\n") };
  });
}
