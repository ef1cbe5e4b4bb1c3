import { Global, Module, type DynamicModule, type LoggerService } from '@nestjs/common';
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogFormat, LogLevel } from '../config/app-config';

export const LOGGER = Symbol('LOGGER');
export type { Logger };

export interface LogOutput {
  /** auto: pretty when stdout is a terminal outside production, JSON otherwise. */
  format?: LogFormat;
  production?: boolean;
  stdoutIsTerminal?: boolean;
}

/** What `auto` means: people read a terminal, machines read everything else (and production). */
export function chooseLogFormat(output: LogOutput): 'json' | 'pretty' {
  const format = output.format ?? 'auto';
  if (format !== 'auto') return format;
  return output.stdoutIsTerminal && !output.production ? 'pretty' : 'json';
}

/**
 * Logs on stdout, one line per event: JSON, or human-readable lines (pino-pretty) when chooseLogFormat
 * says so. pino-pretty is a development dependency, absent from the production image: without it the
 * logs stay JSON, and an explicit LOG_FORMAT=pretty says so in the first line.
 */
export function createLogger(
  level: LogLevel,
  base: Record<string, unknown> = {},
  output: LogOutput = {},
): Logger {
  const options = {
    level,
    base: { service: 'job-service', ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (chooseLogFormat({ stdoutIsTerminal: process.stdout.isTTY, ...output }) === 'json') return pino(options);
  const pretty = loadPrettyStream();
  if (pretty) return pino(options, pretty);
  const logger = pino(options);
  if (output.format === 'pretty')
    logger.warn('LOG_FORMAT=pretty needs pino-pretty, which is not installed: JSON logs');
  return logger;
}

function loadPrettyStream(): DestinationStream | undefined {
  let build: typeof PinoPretty;
  try {
    build = createRequire(__filename)('pino-pretty') as typeof PinoPretty;
  } catch {
    return undefined;
  }
  return build({
    // Colours only for a terminal: LOG_FORMAT=pretty into a file should not fill it with escape codes.
    colorize: Boolean(process.stdout.isTTY),
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'service,pid,hostname',
    // Synchronous, like pino's own stdout: the last lines before an exit are not lost.
    sync: true,
  });
}

/** NestJS's start-up chatter (a line per module and per route): useful when debugging, noise otherwise. */
const NEST_BOOT_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer']);

/** Routes NestJS's own log lines into pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    if (context !== undefined && NEST_BOOT_CONTEXTS.has(context))
      this.logger.debug({ context }, String(message));
    else this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}

@Global()
@Module({})
export class LoggingModule {
  static forRoot(logger: Logger): DynamicModule {
    return { module: LoggingModule, providers: [{ provide: LOGGER, useValue: logger }], exports: [LOGGER] };
  }
}
