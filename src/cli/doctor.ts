import { CONFIG_OPTION, type Command, configFrom, stringOption } from "./command.js";

export const doctor: Command = {
  name: "doctor",
  summary: "check what breaks in production and say how to fix it (exit 1 on any failure)",
  usage: "[--config FILE] [--homeserver NAME] [--send-test-mail ADDRESS]",
  options: {
    config: CONFIG_OPTION,
    homeserver: {
      type: "string",
      valueName: "NAME",
      description: "resolve and contact this homeserver as account/register and onbind would",
    },
    "send-test-mail": {
      type: "string",
      valueName: "ADDRESS",
      description: "send one verification email (test values) to ADDRESS instead of only connecting",
    },
  },
  examples: [
    "seraph doctor --config /etc/seraph/seraph.yaml",
    "seraph doctor --config /etc/seraph/seraph.yaml --homeserver matrix.org --send-test-mail you@example.org",
  ],
  details: `Checks the database (reachable, migrated, writable), the signing key (readable, mode 0600, published),
public_base_url (reaches this server and serves its key; plain http is a warning), SMTP (connect, EHLO,
STARTTLS/TLS with certificate verification, AUTH; nothing is sent without --send-test-mail), the SMS
provider (a dry request where it has one), Redis, the terms file and every brand's templates. Run it on the
server, with the same configuration and user as the service. Exit 0 when nothing failed (warnings allowed).`,
  async run({ values }) {
    const cfg = configFrom(values);
    const homeserver = stringOption(values, "homeserver");
    const sendTestMail = stringOption(values, "send-test-mail");
    // The checks load SMTP, Redis and HTTP clients: only for this command, never for `serve`.
    const [{ runDoctor }, { formatReport }] = await Promise.all([
      import("../doctor/run.js"),
      import("../doctor/report.js"),
    ]);
    const report = await runDoctor(cfg, {
      ...(homeserver !== undefined ? { homeserver } : {}),
      ...(sendTestMail !== undefined ? { sendTestMail } : {}),
    });
    process.stdout.write(formatReport(report));
    return report.failed ? 1 : 0;
  },
};
