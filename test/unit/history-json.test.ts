import { describe, expect, it } from 'vitest';
import { temporal } from '@temporalio/proto';
import { historyFromJson, historyToJson } from '../replay/history-json';

describe('history JSON (test/replay/history-json.ts)', () => {
  it('reads proto3 JSON into SDK history types and writes the same JSON back', () => {
    const json = {
      events: [
        {
          eventId: '1',
          eventType: 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED',
          workflowExecutionStartedEventAttributes: { workflowType: { name: 'backupWorkflow' } },
        },
      ],
    };
    const history = historyFromJson(JSON.stringify(json));
    const [event] = history.events ?? [];
    // The replay worker takes a decoded history only when eventId is a Long, not a string.
    expect(typeof event?.eventId).toBe('object');
    expect(String(event?.eventId)).toBe('1');
    expect(event?.eventType).toBe(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED);
    expect(JSON.parse(historyToJson(history))).toEqual(json);
  });
});
