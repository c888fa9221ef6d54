# Databricks notebook source
print("render")
