import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { targetConstructorToSchema } from 'class-validator-jsonschema';
import { validateDto, type FieldProblem } from '../common/dto-validation';
import { JOB_HANDLER_METADATA, type JobHandler, type JobHandlerOptions } from './job-handler';

export interface RegisteredHandler {
  options: JobHandlerOptions;
  handler: JobHandler;
}

export interface JobTypeDescription {
  job_type: string;
  description: string;
  payload_schema: object;
}

/**
 * Finds every @JobHandler provider at startup. The API uses it to validate payloads and list job types,
 * the worker to run jobs.
 */
@Injectable()
export class HandlerRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, RegisteredHandler>();
  /** Sorted once: the worker passes it to every claim. */
  private sortedTypes: readonly string[] = [];

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const options = Reflect.getMetadata(JOB_HANDLER_METADATA, metatype) as JobHandlerOptions | undefined;
      if (!options) continue;
      if (this.handlers.has(options.type))
        throw new Error(`Two handlers are registered for job type "${options.type}"`);
      this.handlers.set(options.type, { options, handler: instance as JobHandler });
    }
    this.sortedTypes = [...this.handlers.keys()].sort();
  }

  get(jobType: string): RegisteredHandler | undefined {
    return this.handlers.get(jobType);
  }

  types(): readonly string[] {
    return this.sortedTypes;
  }

  describe(): JobTypeDescription[] {
    return this.types().map((type) => {
      const { options } = this.handlers.get(type)!;
      const schema = options.payload ? targetConstructorToSchema(options.payload) : { type: 'object' };
      return { job_type: type, description: options.description, payload_schema: schema };
    });
  }

  /**
   * Validates a payload against its handler's DTO; returns the problems, each naming its field. An
   * unknown job type is a problem of `job_type`, whose message lists the known types.
   */
  async validatePayload(jobType: string, payload: object): Promise<FieldProblem[]> {
    const registered = this.handlers.get(jobType);
    if (!registered) {
      const known = this.types().join(', ');
      return [{ field: 'job_type', message: `unknown job type "${jobType}"; known types: ${known}` }];
    }
    if (!registered.options.payload) return [];
    const { value, problems } = await validateDto(registered.options.payload, payload, 'payload');
    if (problems.length > 0 || !registered.handler.checkPayload) return problems;
    return registered.handler.checkPayload(value);
  }
}
