/** The sydent commands' lines of `seraph --help` (kept apart so that help loads no import code). */
export const IMPORT_HELP = `  seraph import-sydent --sydent-db PATH --sydent-config PATH [--config FILE]
                       [--dry-run] [--verify [--expected FILE | --against URL]] [--merge] [--replace-key]
                       [--peers import|skip] [--sessions] [--resume] [--rotate-pepper]
                                          take over from a stopped sydent: signing key, bindings,
                                          pepper, invites, accounts, terms (docs/migrating-from-sydent.md)
  seraph config from-sydent sydent.conf   print a Seraph configuration translated from sydent's
  seraph templates from-sydent SRC DEST [--sydent-config sydent.conf]
                                          convert sydent's email templates (brand folders) to Seraph's
`;
