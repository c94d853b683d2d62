/** `seraph doctor`: every check, in the order a server meets them at start and in use. */
import type { ResolvedConfig } from "../config/load.js";
import { checkTemplates, checkTerms } from "./content.js";
import { checkDatabase } from "./database.js";
import { checkHomeserver, type HomeserverCheckOptions } from "./homeserver.js";
import { checkSigningKey } from "./keys.js";
import { checkMail } from "./mail.js";
import { checkPublicUrl } from "./public-url.js";
import { Report } from "./report.js";
import { checkRedis, checkSms } from "./sms.js";

export interface DoctorOptions extends HomeserverCheckOptions {
  homeserver?: string;
  sendTestMail?: string;
}

export async function runDoctor(cfg: ResolvedConfig, options: DoctorOptions = {}): Promise<Report> {
  const report = new Report();
  const store = await checkDatabase(cfg, report);
  try {
    const key = await checkSigningKey(cfg, store, report);
    await checkPublicUrl(cfg, key, report);
  } finally {
    await store?.close();
  }
  await checkMail(cfg, report, options.sendTestMail);
  await checkSms(cfg, report);
  await checkRedis(cfg, report);
  checkTerms(cfg, report);
  await checkTemplates(cfg, report);
  if (options.homeserver !== undefined) await checkHomeserver(cfg, options.homeserver, report, options);
  return report;
}
