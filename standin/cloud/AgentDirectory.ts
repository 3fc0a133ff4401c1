/**
 * The agents connected to the cloud and the devices (containers) each serves. Registration is pull-based:
 * the directory asks an agent with `agent:devices` and keeps the last answer. A device served by several
 * agents goes to the one that connected first.
 */
import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import { SafeEmitter } from '../../common/SafeEmitter.js';
import {
  devicesAckSchema,
  Topics,
  type DeviceInfo,
  type DeviceListing,
} from '../../common/protocol/signaling.js';

export interface AgentRecord {
  readonly socket: Socket;
  readonly agentId: string;
  devices: DeviceInfo[];
  /** Set once the agent has answered `agent:devices` at least once. */
  registered: boolean;
  refreshing: Promise<void> | undefined;
}

export interface AgentDirectoryEvents {
  /** An agent answered `agent:devices` for the first time. */
  'agent-registered': [agent: AgentRecord];
  'agent-removed': [agent: AgentRecord];
}

export class AgentDirectory extends SafeEmitter<AgentDirectoryEvents> {
  readonly #agents = new Map<string, AgentRecord>(); // by socket id
  readonly #log: Logger;
  readonly #ackTimeoutMs: number;

  constructor(options: { logger: Logger; ackTimeoutMs: number }) {
    super();
    this.#log = options.logger;
    this.#ackTimeoutMs = options.ackTimeoutMs;
  }

  get size(): number {
    return this.#agents.size;
  }

  add(socket: Socket, agentId: string): AgentRecord {
    const agent: AgentRecord = { socket, agentId, devices: [], registered: false, refreshing: undefined };
    this.#agents.set(socket.id, agent);
    return agent;
  }

  remove(socket: Socket): AgentRecord | undefined {
    const agent = this.#agents.get(socket.id);
    if (!agent) return undefined;
    this.#agents.delete(socket.id);
    this.safeEmit('agent-removed', agent);
    return agent;
  }

  get(socket: Socket): AgentRecord | undefined {
    return this.#agents.get(socket.id);
  }

  /** The agent serving `deviceId`, or undefined. */
  find(deviceId: string): AgentRecord | undefined {
    for (const agent of this.#agents.values()) {
      if (agent.devices.some((d) => d.name === deviceId)) return agent;
    }
    return undefined;
  }

  /** Every device of every agent, first owner wins, sorted by name. */
  list(): DeviceListing[] {
    const seen = new Map<string, DeviceListing>();
    for (const agent of this.#agents.values()) {
      for (const d of agent.devices) {
        if (!seen.has(d.name)) seen.set(d.name, { name: d.name, state: d.state, agent_id: agent.agentId });
      }
    }
    return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Asks every agent for its devices; resolves when all have answered or timed out. Never rejects. */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => this.refresh(a)));
  }

  /** Asks one agent for its devices; concurrent calls share one request. Never rejects. */
  refresh(agent: AgentRecord): Promise<void> {
    agent.refreshing ??= this.#ask(agent).finally(() => {
      agent.refreshing = undefined;
    });
    return agent.refreshing;
  }

  async #ask(agent: AgentRecord): Promise<void> {
    let reply: unknown;
    try {
      // An empty payload before the ack: handlers written as (payload, ack) and as (ack) both get the ack last.
      reply = await agent.socket.timeout(this.#ackTimeoutMs).emitWithAck(Topics.devices, {});
    } catch {
      if (agent.socket.connected)
        this.#log.warn({ agent: agent.agentId }, 'agent did not answer agent:devices');
      return;
    }
    const parsed = devicesAckSchema.safeParse(reply);
    if (!parsed.success) {
      this.#log.warn({ agent: agent.agentId }, 'agent answered agent:devices with a malformed payload');
      return;
    }
    if (!this.#agents.has(agent.socket.id)) return;
    agent.devices = parsed.data.devices;
    if (!agent.registered) {
      agent.registered = true;
      this.#log.info({ agent: agent.agentId, devices: agent.devices.length }, 'agent registered');
      this.safeEmit('agent-registered', agent);
    }
  }
}
