import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { targetConstructorToSchema } from 'class-validator-jsonschema';
import { acceptedQuickly, validateDto, type FieldProblem } from '../common/dto-validation';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { loadHandlerModules } from './handler-modules';
import { JOB_HANDLER_METADATA, type JobHandler, type JobHandlerOptions } from './job-handler';

/** One job type this process knows: a built-in (or in-tree) provider, or a handler module's definition. */
export interface RegisteredHandler {
  handler: JobHandler;
  description: string;
  payloadSchema: object;
  /** The payload's problems, fields under `payload`; empty when it is valid. */
  validatePayload(payload: object): Promise<FieldProblem[]>;
  /** The same when it can be told at once, without class-validator; undefined when it cannot. */
  payloadProblemsQuickly(payload: object): FieldProblem[] | undefined;
}

export interface JobTypeDescription {
  job_type: string;
  description: string;
  payload_schema: object;
}

/**
 * Every job type of this process: the @JobHandler providers, then the definitions of HANDLER_MODULES,
 * loaded at startup (a bad module stops the boot). The API uses it to validate payloads and list job
 * types, the worker to run jobs.
 */
@Injectable()
export class HandlerRegistry implements OnModuleInit {
  private readonly handlers = new Map<string, RegisteredHandler>();
  /** Sorted once: the worker passes it to every claim. */
  private sortedTypes: readonly string[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    for (const wrapper of this.discovery.getProviders()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const options = Reflect.getMetadata(JOB_HANDLER_METADATA, metatype) as JobHandlerOptions | undefined;
      if (!options) continue;
      if (this.handlers.has(options.type))
        throw new Error(`Two handlers are registered for job type "${options.type}"`);
      this.handlers.set(options.type, providerHandler(options, instance as JobHandler));
    }
    const loaded = await loadHandlerModules(this.config.handlerModules, new Set(this.handlers.keys()));
    for (const { definition, validatePayload } of loaded) {
      this.handlers.set(definition.type, {
        handler: { run: (payload, context) => definition.run(payload as Record<string, unknown>, context) },
        description: definition.description,
        payloadSchema: definition.payload_schema,
        validatePayload: (payload) => Promise.resolve(validatePayload(payload)),
        payloadProblemsQuickly: validatePayload,
      });
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
      const { description, payloadSchema } = this.handlers.get(type)!;
      return { job_type: type, description, payload_schema: payloadSchema };
    });
  }

  /**
   * Validates a payload against its job type's schema; returns the problems, each naming its field. An
   * unknown job type is a problem of `job_type`, whose message lists the known types.
   */
  async validatePayload(jobType: string, payload: object): Promise<FieldProblem[]> {
    const registered = this.handlers.get(jobType);
    if (!registered) {
      const known = this.types().join(', ');
      return [{ field: 'job_type', message: `unknown job type "${jobType}"; known types: ${known}` }];
    }
    return registered.validatePayload(payload);
  }

  /**
   * validatePayload's answer when it can be told at once, as it can for most payloads; undefined when it
   * cannot (an unknown job type included), and validatePayload tells.
   */
  payloadProblemsQuickly(jobType: string, payload: object): FieldProblem[] | undefined {
    return this.handlers.get(jobType)?.payloadProblemsQuickly(payload);
  }
}

/** A @JobHandler provider: its payload DTO, then the checks a DTO cannot express. */
function providerHandler(options: JobHandlerOptions, handler: JobHandler): RegisteredHandler {
  const dto = options.payload;
  const checked = (value: object): FieldProblem[] => handler.checkPayload?.(value) ?? [];
  return {
    handler,
    description: options.description,
    payloadSchema: dto ? targetConstructorToSchema(dto) : { type: 'object' },
    validatePayload: async (payload) => {
      if (!dto) return [];
      const { value, problems } = await validateDto(dto, payload, 'payload');
      return problems.length > 0 ? problems : checked(value);
    },
    payloadProblemsQuickly: (payload) => {
      if (!dto) return [];
      const value = acceptedQuickly(dto, payload);
      return value && checked(value);
    },
  };
}
