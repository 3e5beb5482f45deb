// The extension's settings (`bertStudio.*`), read in one place: a typed getter per setting, with the defaults,
// bounds and choices of common/settings.ts. Nothing else in client/ reads the configuration. Getters read the
// configuration each time, so a changed setting applies to the next command without a reload.
import * as vscode from "vscode";
import { finetuneDefaults, pretrainDefaults, SECTION, settingDefault, validSetting, type SettingKey, type Settings } from "../common/settings.js";

export class Config {
  /**
   * The setting's value, or its default when the value does not fit its type, bounds or choices
   * (settings.json takes any JSON; the Settings editor only marks such a value).
   */
  private get<K extends SettingKey>(key: K): Settings[K] {
    const value = vscode.workspace.getConfiguration(SECTION).get<unknown>(key);
    return validSetting(key, value) ? value : settingDefault(key);
  }

  /** Whether the user set `key` in some scope, rather than leaving its default. */
  private isSet(key: SettingKey): boolean {
    const i = vscode.workspace.getConfiguration(SECTION).inspect(key);
    return [i?.globalValue, i?.workspaceValue, i?.workspaceFolderValue].some((v) => validSetting(key, v));
  }

  get preset() {
    return this.get("preset");
  }
  get steps() {
    return this.get("steps");
  }
  /** A pretraining budget in minutes (0: none, the steps count). */
  get minutes() {
    return this.get("minutes");
  }
  /** Sequences per step, for pretraining and fine-tuning. */
  get batch() {
    return this.get("batch");
  }
  get seq() {
    return this.get("seq");
  }
  /** The pretraining peak learning rate: bertStudio.lr when set, otherwise the default for a new model or for continuing one. */
  pretrainLr(continuing: boolean): number {
    return continuing && !this.isSet("lr") ? pretrainDefaults.continueLr : this.get("lr");
  }
  get schedule() {
    return this.get("schedule");
  }
  get device() {
    return this.get("device");
  }
  /** A vocab.txt to pretrain with; undefined: train one of `vocabSize` tokens. */
  get vocab(): string | undefined {
    return this.get("vocab") || undefined;
  }
  get vocabSize() {
    return this.get("vocabSize");
  }
  get include() {
    return this.get("include");
  }
  get exclude() {
    return this.get("exclude");
  }
  get maxFileMb() {
    return this.get("maxFileMb");
  }
  get finetuneEpochs() {
    return this.get("finetune.epochs");
  }
  /** bertStudio.finetune.lr when the user set it; undefined: the engine's rate for the model's size. */
  get finetuneLr(): number | undefined {
    return this.isSet("finetune.lr") ? this.get("finetune.lr") : undefined;
  }
  /** `finetune.maxLength` when the user set it, otherwise the task's default (384 for question answering). */
  finetuneMaxLength(task: string): number {
    return this.isSet("finetune.maxLength") ? this.get("finetune.maxLength") : finetuneDefaults.maxLengthFor(task);
  }
  get inlineEnabled() {
    return this.get("inline.enabled");
  }
  /** Predictions per [MASK]: inline alternatives, hover and Fill Mask. */
  get inlineTopK() {
    return this.get("inline.topK");
  }
  /** int8 weights in the models the server runs for the editor. */
  get int8() {
    return this.get("int8");
  }
}

export const config = new Config();
