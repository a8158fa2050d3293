import { Context } from '@temporalio/activity';
import { humanBytes } from '../../common/text';

/** Slack incoming webhook. The URL is a secret: it comes from the worker's settings, never from arguments. */
export interface NotifyDeps {
  readonly slackWebhookUrl: string | undefined;
  /** Per-request timeout. */
  readonly timeoutMs?: number;
}

export interface SlackField {
  readonly title: string;
  readonly value: string;
}

export interface SlackMessage {
  /** Plain text (also the notification preview). */
  readonly text: string;
  readonly fields?: readonly SlackField[];
  /** A link shown as a button-like line, e.g. the run in the Temporal Web UI. */
  readonly link?: { readonly label: string; readonly url: string };
  /** Raw Block Kit blocks, when a caller needs more than text + fields. */
  readonly blocks?: readonly unknown[];
}

/**
 * Text as Slack shows it, never as a control sequence: `<!channel>`, `<@U123>` or `<https://x|label>`
 * typed into a comment, a name or an error would ping people or disguise a link. Slack's rule:
 * escape `&`, `<` and `>` (https://api.slack.com/reference/surfaces/formatting#escaping).
 */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Block Kit payload, built as an object and serialized with JSON.stringify: quotes and newlines in
 * values are safe. Every text is escaped (slackEscape); only the link is a control sequence.
 */
export function slackPayload(message: SlackMessage): Record<string, unknown> {
  const text = slackEscape(message.text);
  if (message.blocks) return { text, blocks: message.blocks };
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text } }];
  if (message.fields?.length) {
    blocks.push({
      type: 'section',
      fields: message.fields.slice(0, 10).map((f) => ({
        type: 'mrkdwn',
        text: `*${slackEscape(f.title)}*\n${slackEscape(f.value)}`,
      })),
    });
  }
  if (message.link)
    blocks.push({
      type: 'context',
      // The URL is ours (common/links.ts, percent-encoded); `|` and `>` would end it early, so never raw.
      elements: [
        {
          type: 'mrkdwn',
          text: `<${message.link.url.replace(/[|>]/g, encodeURIComponent)}|${slackEscape(message.link.label)}>`,
        },
      ],
    });
  return { text, blocks };
}

export interface BackupNotice {
  readonly outcome: 'succeeded' | 'failed' | 'cancelled';
  readonly database: string;
  readonly backupId: string;
  readonly trigger: 'scheduled' | 'manual';
  readonly sizeBytes?: number;
  readonly durationMs: number;
  readonly location?: string;
  readonly error?: string;
  readonly runUrl: string;
}

/** The Slack message for a finished backup. */
export function backupMessage(n: BackupNotice): SlackMessage {
  const icon =
    n.outcome === 'succeeded' ? ':white_check_mark:' : n.outcome === 'cancelled' ? ':warning:' : ':x:';
  const fields: SlackField[] = [
    { title: 'Backup', value: n.backupId },
    { title: 'Duration', value: `${(n.durationMs / 1000).toFixed(1)} s` },
  ];
  if (n.sizeBytes !== undefined) fields.push({ title: 'Size', value: humanBytes(n.sizeBytes) });
  if (n.location) fields.push({ title: 'Location', value: n.location });
  if (n.error) fields.push({ title: 'Error', value: n.error.slice(0, 1500) });
  return {
    text: `${icon} ${n.trigger} backup of ${n.database} ${n.outcome}`,
    fields,
    link: { label: 'Open the run in the Temporal Web UI', url: n.runUrl },
  };
}

export function createNotifyActivities(deps: NotifyDeps) {
  async function post(message: SlackMessage): Promise<{ sent: boolean; reason?: string }> {
    const log = Context.current().log;
    if (!deps.slackWebhookUrl)
      return { sent: false, reason: 'no Slack webhook configured (DBOPS_SLACK_WEBHOOK_URL)' };
    try {
      const res = await fetch(deps.slackWebhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(slackPayload(message)),
        signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
      });
      if (!res.ok) {
        const reason = `Slack answered HTTP ${res.status}`;
        log.warn('Slack notification failed', { reason });
        return { sent: false, reason };
      }
      return { sent: true };
    } catch (err) {
      // Never include the URL: it is the secret.
      const reason = `Slack webhook unreachable: ${(err as Error).name}`;
      log.warn('Slack notification failed', { reason });
      return { sent: false, reason };
    }
  }
  return {
    /** Posts a message; a failure is logged and returned, never thrown (a notification never fails an operation). */
    notifySlack: post,
    notifyBackup: (notice: BackupNotice) => post(backupMessage(notice)),
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
