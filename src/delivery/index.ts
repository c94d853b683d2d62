export {
  createMailer,
  type EmailConfig,
  EmailSendError,
  type EmailSendErrorReason,
  type Mailer,
  type OutgoingEmail,
  type SmtpConfig,
} from "./mailer.js";
export { DEFAULT_SUBJECTS, resolveBrand, TEMPLATE_NAMES, type TemplateName } from "./templates.js";
