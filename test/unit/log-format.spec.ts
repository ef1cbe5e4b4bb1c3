import { chooseLogFormat } from '../../src/logging/logger';

describe('chooseLogFormat', () => {
  it('is pretty on a terminal outside production, JSON everywhere else', () => {
    expect(chooseLogFormat({ stdoutIsTerminal: true, production: false })).toBe('pretty');
    expect(chooseLogFormat({ stdoutIsTerminal: true, production: true })).toBe('json');
    expect(chooseLogFormat({ stdoutIsTerminal: false, production: false })).toBe('json');
    expect(chooseLogFormat({ stdoutIsTerminal: undefined, production: false })).toBe('json');
  });

  it('does what LOG_FORMAT says when it says json or pretty', () => {
    expect(chooseLogFormat({ format: 'json', stdoutIsTerminal: true, production: false })).toBe('json');
    expect(chooseLogFormat({ format: 'pretty', stdoutIsTerminal: false, production: true })).toBe('pretty');
  });
});
